import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCaller, createUser, startAdminApp, type AdminTestContext } from './admin-client.js';

let ctx: AdminTestContext;
let api: ReturnType<typeof adminCaller>;

beforeAll(async () => {
  ctx = await startAdminApp();
  api = adminCaller(ctx);
});
afterAll(async () => {
  await ctx.close();
});

type Audit = {
  id: number;
  actor: string | null;
  action: string;
  target: string;
  details: Record<string, unknown>;
  at: string;
  ip: string;
};

async function lastAudit(action: string): Promise<Audit | undefined> {
  return (await api('GET', `/api/admin/audit?action=${action}&limit=1`)).json<{ entries: Audit[] }>()
    .entries[0];
}

function expect400(response: { statusCode: number; json: <T>() => T }, field: string) {
  expect(response.statusCode).toBe(400);
  const body = response.json<{ code: string; message: string; field?: string }>();
  expect(body.code).toBe('COVE_ERR_REQUEST_INVALID');
  expect(`${body.field ?? ''} ${body.message}`).toContain(field);
}

describe('groups', () => {
  it('creates, lists, renames, sets members of and deletes a group, auditing each change', async () => {
    const created = await api('POST', '/api/admin/groups', {
      body: { name: '  Data   Team ', description: 'Analysts' },
    });
    expect(created.statusCode).toBe(201);
    const group = created.json<{ id: string; name: string; description: string; members: unknown[] }>();
    expect(group).toMatchObject({ name: 'Data Team', description: 'Analysts', members: [] });
    expect(await lastAudit('admin.group.create')).toMatchObject({
      actor: 'root',
      target: `group:${group.id}`,
      details: { name: 'Data Team' },
    });

    const list = (await api('GET', '/api/admin/groups')).json<{ name: string }[]>();
    expect(list.map((g) => g.name)).toEqual(expect.arrayContaining(['admins', 'Data Team']));

    const renamed = await api('PATCH', `/api/admin/groups/${group.id}`, { body: { name: 'Data Science' } });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json()).toMatchObject({ id: group.id, name: 'Data Science', description: 'Analysts' });
    expect(await lastAudit('admin.group.update')).toMatchObject({
      details: { name: 'Data Science', previousName: 'Data Team' },
    });

    const u1 = await createUser(ctx.t, 'member-one');
    const u2 = await createUser(ctx.t, 'member-two');
    const members = await api('PUT', `/api/admin/groups/${group.id}/members`, {
      body: { userIds: [u2, u1, u1] },
    });
    expect(members.statusCode).toBe(200);
    expect(members.json<{ members: unknown[] }>().members).toEqual([
      { id: u1, username: 'member-one' },
      { id: u2, username: 'member-two' },
    ]);
    expect(await lastAudit('admin.group.members')).toMatchObject({
      details: {
        added: [u2, u1],
        removed: [],
        userNames: { [u1]: 'member-one', [u2]: 'member-two' },
      },
    });
    const users = (await api('GET', '/api/admin/users')).json<{ id: string; groups: string[] }[]>();
    expect(users.find((u) => u.id === u1)?.groups).toEqual(['Data Science']);

    const fewer = await api('PUT', `/api/admin/groups/${group.id}/members`, { body: { userIds: [u2] } });
    expect(fewer.json<{ members: { id: string }[] }>().members.map((m) => m.id)).toEqual([u2]);
    expect(await lastAudit('admin.group.members')).toMatchObject({
      details: { added: [], removed: [u1], userNames: { [u1]: 'member-one' } },
    });

    expect((await api('DELETE', `/api/admin/groups/${group.id}`)).statusCode).toBe(204);
    expect(await ctx.t.store.groups.get(group.id)).toBeUndefined();
    expect(await lastAudit('admin.group.delete')).toMatchObject({
      target: `group:${group.id}`,
      details: { name: 'Data Science' },
    });
    expect((await api('DELETE', `/api/admin/groups/${group.id}`)).statusCode).toBe(404);
  });

  it('refuses duplicate names ignoring case and spacing with 409', async () => {
    expect((await api('POST', '/api/admin/groups', { body: { name: 'Ops' } })).statusCode).toBe(201);
    expect((await api('POST', '/api/admin/groups', { body: { name: ' OPS ' } })).statusCode).toBe(409);
    const other = (await api('POST', '/api/admin/groups', { body: { name: 'Ops 2' } })).json<{
      id: string;
    }>();
    expect((await api('PATCH', `/api/admin/groups/${other.id}`, { body: { name: 'ops' } })).statusCode).toBe(
      409,
    );
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: ';drop' }, 'name'],
    [{ name: 'ok', description: 'x'.repeat(1025) }, 'description'],
    [{ description: 'no name' }, 'name'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    expect400(await api('POST', '/api/admin/groups', { body }), field);
  });

  it('refuses unknown members with 400 naming them, and unknown groups with 404', async () => {
    const group = (await api('POST', '/api/admin/groups', { body: { name: 'Members test' } })).json<{
      id: string;
    }>();
    const known = await createUser(ctx.t, 'known-member');
    const response = await api('PUT', `/api/admin/groups/${group.id}/members`, {
      body: { userIds: [known, 'ghost-1', 'ghost-2'] },
    });
    expect400(response, 'userIds');
    expect(response.json<{ message: string }>().message).toContain('ghost-1, ghost-2');
    expect(await ctx.t.store.groups.members(group.id)).toEqual([]);
    expect((await api('PUT', '/api/admin/groups/nope/members', { body: { userIds: [] } })).statusCode).toBe(
      404,
    );
    expect((await api('PATCH', '/api/admin/groups/nope', { body: { name: 'x' } })).statusCode).toBe(404);
  });

  it('protects the admins group: no rename, no delete, never without an enabled member', async () => {
    const admins = await ctx.t.store.groups.getByName('admins');
    if (!admins) throw new Error('admins group missing');
    expect(
      (await api('PATCH', `/api/admin/groups/${admins.id}`, { body: { name: 'superusers' } })).statusCode,
    ).toBe(409);
    expect((await api('DELETE', `/api/admin/groups/${admins.id}`)).statusCode).toBe(409);
    const disabled = await createUser(ctx.t, 'disabled-one', { disabled: true });
    const emptied = await api('PUT', `/api/admin/groups/${admins.id}/members`, {
      body: { userIds: [disabled] },
    });
    expect(emptied.statusCode).toBe(409);
    expect(await ctx.t.store.groups.members(admins.id)).toEqual([ctx.adminId]);
    expect(
      (await api('PATCH', `/api/admin/groups/${admins.id}`, { body: { description: 'Root users' } }))
        .statusCode,
    ).toBe(200);
  });
});

describe('accounts', () => {
  it('creates, lists, renames and deletes an account, auditing each change', async () => {
    const created = await api('POST', '/api/admin/accounts', {
      body: { accountId: '111122223333', name: 'Production' },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      accountId: '111122223333',
      name: 'Production',
      createdAt: expect.any(String),
    });
    expect(await lastAudit('admin.account.create')).toMatchObject({
      target: 'account:111122223333',
      details: { name: 'Production' },
    });
    expect((await api('GET', '/api/admin/accounts')).json()).toContainEqual(
      expect.objectContaining({ accountId: '111122223333' }),
    );

    const renamed = await api('PATCH', '/api/admin/accounts/111122223333', { body: { name: 'Prod' } });
    expect(renamed.json()).toMatchObject({ name: 'Prod' });
    expect(await lastAudit('admin.account.update')).toMatchObject({
      details: { name: 'Prod', previousName: 'Production' },
    });

    expect((await api('DELETE', '/api/admin/accounts/111122223333')).statusCode).toBe(204);
    expect(await lastAudit('admin.account.delete')).toMatchObject({ target: 'account:111122223333' });
    expect((await api('DELETE', '/api/admin/accounts/111122223333')).statusCode).toBe(404);
  });

  it('refuses duplicates with 409', async () => {
    await api('POST', '/api/admin/accounts', { body: { accountId: '444455556666', name: 'Staging' } });
    expect(
      (await api('POST', '/api/admin/accounts', { body: { accountId: '444455556666', name: 'Other' } }))
        .statusCode,
    ).toBe(409);
    expect(
      (await api('POST', '/api/admin/accounts', { body: { accountId: '777788889999', name: 'staging ' } }))
        .statusCode,
    ).toBe(409);
  });

  it.each([
    [{ accountId: '12345678901', name: 'Short' }, 'accountId'],
    [{ accountId: '1234567890123', name: 'Long' }, 'accountId'],
    [{ accountId: '12345678901a', name: 'Letter' }, 'accountId'],
    [{ accountId: '123456789012', name: '' }, 'name'],
    [{ accountId: '123456789012', name: 'x'.repeat(51) }, 'name'],
    [{ name: 'No id' }, 'accountId'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    expect400(await api('POST', '/api/admin/accounts', { body }), field);
  });

  it('answers 400 for a malformed account id in the path and 404 for an unknown one', async () => {
    expect400(await api('PATCH', '/api/admin/accounts/abc', { body: { name: 'x' } }), 'accountId');
    expect((await api('PATCH', '/api/admin/accounts/000000000000', { body: { name: 'x' } })).statusCode).toBe(
      404,
    );
  });
});

describe('permission sets', () => {
  const policy = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Deny', Action: 's3:DeleteBucket', Resource: '*' }],
  };

  it('creates with defaults, updates, and deletes, auditing each change', async () => {
    const created = await api('POST', '/api/admin/permission-sets', {
      body: { name: 'DataScientist', sessionDurationS: 7200 },
    });
    expect(created.statusCode).toBe(201);
    const set = created.json<{ id: string }>();
    expect(created.json()).toMatchObject({
      name: 'DataScientist',
      description: '',
      sessionDurationS: 7200,
      roleArnTemplate: 'arn:aws:iam::{accountId}:role/Cove-{name}',
      sessionPolicy: null,
      roleOverrides: {},
    });
    expect(await lastAudit('admin.permission_set.create')).toMatchObject({
      details: { name: 'DataScientist', sessionPolicy: false },
    });

    const updated = await api('PATCH', `/api/admin/permission-sets/${set.id}`, {
      body: {
        description: 'Notebooks and S3',
        sessionPolicy: policy,
        roleOverrides: { '111111111111': 'arn:aws:iam::111111111111:role/legacy/DataSci' },
        roleArnTemplate: 'arn:aws:iam::{accountId}:role/teams/{name}',
      },
    });
    expect(updated.statusCode).toBe(200);
    expect(updated.json()).toMatchObject({
      description: 'Notebooks and S3',
      sessionPolicy: JSON.stringify(policy),
      roleOverrides: { '111111111111': 'arn:aws:iam::111111111111:role/legacy/DataSci' },
      roleArnTemplate: 'arn:aws:iam::{accountId}:role/teams/{name}',
    });
    expect((await lastAudit('admin.permission_set.update'))?.details.changed).toEqual([
      'description',
      'roleArnTemplate',
      'sessionPolicy',
      'roleOverrides',
    ]);

    const cleared = await api('PATCH', `/api/admin/permission-sets/${set.id}`, {
      body: { sessionPolicy: null },
    });
    expect(cleared.json()).toMatchObject({ sessionPolicy: null });
    const asText = await api('PATCH', `/api/admin/permission-sets/${set.id}`, {
      body: { sessionPolicy: JSON.stringify(policy, null, 2) },
    });
    expect(asText.json()).toMatchObject({ sessionPolicy: JSON.stringify(policy) });

    const list = (await api('GET', '/api/admin/permission-sets')).json<{ name: string }[]>();
    expect(list.map((p) => p.name)).toContain('DataScientist');
    expect((await api('DELETE', `/api/admin/permission-sets/${set.id}`)).statusCode).toBe(204);
    expect(await lastAudit('admin.permission_set.delete')).toMatchObject({
      details: { name: 'DataScientist' },
    });
    expect((await api('DELETE', `/api/admin/permission-sets/${set.id}`)).statusCode).toBe(404);
  });

  it('refuses duplicate names ignoring case with 409', async () => {
    expect(
      (await api('POST', '/api/admin/permission-sets', { body: { name: 'administratoraccess' } })).statusCode,
    ).toBe(409);
  });

  it.each([
    [{ name: 'has space' }, 'name'],
    [{ name: 'x'.repeat(33) }, 'name'],
    [{ name: 'Ok', sessionDurationS: 3599 }, 'sessionDurationS'],
    [{ name: 'Ok', sessionDurationS: 43201 }, 'sessionDurationS'],
    [{ name: 'Ok', sessionDurationS: 3600.5 }, 'sessionDurationS'],
    [{ name: 'Ok', roleArnTemplate: 'Cove-{name}' }, 'roleArnTemplate'],
    [{ name: 'Ok', roleArnTemplate: 'arn:aws:iam::123456789012:role/Fixed' }, 'roleArnTemplate'],
    [{ name: 'Ok', roleArnTemplate: 'arn:aws:iam::{accountId}:user/{name}' }, 'roleArnTemplate'],
    [{ name: 'Ok', roleArnTemplate: `arn:aws:iam::{accountId}:role/${'x'.repeat(65)}` }, 'roleArnTemplate'],
    [{ name: 'Ok', sessionPolicy: '{not json' }, 'sessionPolicy'],
    [{ name: 'Ok', sessionPolicy: '[1,2]' }, 'sessionPolicy'],
    [{ name: 'Ok', sessionPolicy: { Statement: [] } }, 'sessionPolicy.Version'],
    [{ name: 'Ok', sessionPolicy: { Version: '2012-10-17' } }, 'sessionPolicy.Statement'],
    [
      { name: 'Ok', sessionPolicy: { Version: '2012-10-17', Statement: [{ Sid: 'x'.repeat(2100) }] } },
      'sessionPolicy',
    ],
    [{ name: 'Ok', roleOverrides: { '123': 'arn:aws:iam::123456789012:role/X' } }, 'roleOverrides.123'],
    [{ name: 'Ok', roleOverrides: { '123456789012': 'not-an-arn' } }, 'roleOverrides.123456789012'],
    [
      { name: 'Ok', roleOverrides: { '123456789012': 'arn:aws:iam::999999999999:role/X' } },
      'roleOverrides.123456789012',
    ],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    const response = await api('POST', '/api/admin/permission-sets', { body });
    expect400(response, field);
    expect(response.json<{ message: string }>().message).not.toMatch(/at .*\.ts|node_modules/);
  });

  it('says how long a too-long policy is and that STS allows 2048', async () => {
    const body = {
      name: 'Ok',
      sessionPolicy: { Version: '2012-10-17', Statement: [{ Sid: 'x'.repeat(2100) }] },
    };
    const message = (await api('POST', '/api/admin/permission-sets', { body })).json<{ message: string }>()
      .message;
    expect(message).toContain('2048');
  });

  it('checks a rename against the role template', async () => {
    const set = (
      await api('POST', '/api/admin/permission-sets', {
        body: { name: 'Short', roleArnTemplate: 'arn:aws:iam::{accountId}:role/{name}-{name}-{name}' },
      })
    ).json<{ id: string }>();
    // 3 × 30 characters is longer than the 64 IAM allows for a role name.
    expect400(
      await api('PATCH', `/api/admin/permission-sets/${set.id}`, { body: { name: 'x'.repeat(30) } }),
      'roleArnTemplate',
    );
    const ok = await api('PATCH', `/api/admin/permission-sets/${set.id}`, { body: { name: 'Renamed' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ name: 'Renamed' });
  });
});

describe('assignments', () => {
  it('creates for a user and a group with names resolved, lists, and deletes, auditing each change', async () => {
    await api('POST', '/api/admin/accounts', { body: { accountId: '210987654321', name: 'Analytics' } });
    const user = await createUser(ctx.t, 'assignee');
    const group = (await api('POST', '/api/admin/groups', { body: { name: 'Analysts' } })).json<{
      id: string;
    }>();

    const direct = await api('POST', '/api/admin/assignments', {
      body: {
        principalType: 'user',
        principalId: user,
        accountId: '210987654321',
        permissionSet: 'ReadOnlyAccess',
      },
    });
    expect(direct.statusCode).toBe(201);
    expect(direct.json()).toMatchObject({
      principalType: 'user',
      principalId: user,
      principalName: 'assignee',
      accountId: '210987654321',
      accountName: 'Analytics',
      permissionSet: 'ReadOnlyAccess',
    });
    const viaGroup = await api('POST', '/api/admin/assignments', {
      body: {
        principalType: 'group',
        principalId: group.id,
        accountId: '210987654321',
        permissionSet: 'poweruseraccess',
      },
    });
    expect(viaGroup.statusCode).toBe(201);
    expect(viaGroup.json()).toMatchObject({ principalName: 'Analysts', permissionSet: 'PowerUserAccess' });
    expect(await lastAudit('admin.assignment.create')).toMatchObject({
      details: { principal: 'group:Analysts', accountId: '210987654321', permissionSet: 'PowerUserAccess' },
    });

    const list = (await api('GET', '/api/admin/assignments')).json<{ id: string; principalName: string }[]>();
    expect(list.map((a) => a.principalName)).toEqual(expect.arrayContaining(['assignee', 'Analysts']));

    const id = direct.json<{ id: string }>().id;
    expect((await api('DELETE', `/api/admin/assignments/${id}`)).statusCode).toBe(204);
    expect(await lastAudit('admin.assignment.delete')).toMatchObject({
      target: `assignment:${id}`,
      details: { principal: 'user:assignee' },
    });
    expect((await api('DELETE', `/api/admin/assignments/${id}`)).statusCode).toBe(404);
  });

  it('refuses a duplicate with 409', async () => {
    await api('POST', '/api/admin/accounts', { body: { accountId: '135791357913', name: 'Dup test' } });
    const user = await createUser(ctx.t, 'dup-assignee');
    const body = {
      principalType: 'user',
      principalId: user,
      accountId: '135791357913',
      permissionSet: 'Billing',
    };
    expect((await api('POST', '/api/admin/assignments', { body })).statusCode).toBe(201);
    expect((await api('POST', '/api/admin/assignments', { body })).statusCode).toBe(409);
    expect(
      (await api('POST', '/api/admin/assignments', { body: { ...body, permissionSet: 'BILLING' } }))
        .statusCode,
    ).toBe(409);
  });

  it.each([
    [
      { principalType: 'robot', principalId: 'x', accountId: '135791357913', permissionSet: 'Billing' },
      'principalType',
    ],
    [
      { principalType: 'user', principalId: 'ghost', accountId: '135791357913', permissionSet: 'Billing' },
      'principalId',
    ],
    [
      { principalType: 'group', principalId: 'ghost', accountId: '135791357913', permissionSet: 'Billing' },
      'principalId',
    ],
    [
      { principalType: 'user', principalId: 'USER', accountId: '999999999999', permissionSet: 'Billing' },
      'accountId',
    ],
    [{ principalType: 'user', principalId: 'USER', accountId: '12', permissionSet: 'Billing' }, 'accountId'],
    [
      { principalType: 'user', principalId: 'USER', accountId: '135791357913', permissionSet: 'NoSuchSet' },
      'permissionSet',
    ],
    [{ principalType: 'user', principalId: 'USER', accountId: '135791357913' }, 'permissionSet'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    const user = (await ctx.t.store.users.getByUsername('dup-assignee'))?.id ?? '';
    const response = await api('POST', '/api/admin/assignments', {
      body: { ...body, ...(body.principalId === 'USER' ? { principalId: user } : {}) },
    });
    expect400(response, field);
  });

  it('drops assignments with their account or permission set', async () => {
    await api('POST', '/api/admin/accounts', { body: { accountId: '246824682468', name: 'Short lived' } });
    const user = await createUser(ctx.t, 'cascade-user');
    const set = (await api('POST', '/api/admin/permission-sets', { body: { name: 'ShortLived' } })).json<{
      id: string;
    }>();
    await api('POST', '/api/admin/assignments', {
      body: {
        principalType: 'user',
        principalId: user,
        accountId: '246824682468',
        permissionSet: 'ShortLived',
      },
    });
    await api('POST', '/api/admin/assignments', {
      body: {
        principalType: 'user',
        principalId: user,
        accountId: '135791357913',
        permissionSet: 'ShortLived',
      },
    });
    expect(await ctx.t.app.directory.effectiveAccess(user)).toHaveLength(2);
    await api('DELETE', '/api/admin/accounts/246824682468');
    expect(await ctx.t.app.directory.effectiveAccess(user)).toHaveLength(1);
    await api('DELETE', `/api/admin/permission-sets/${set.id}`);
    expect(await ctx.t.app.directory.effectiveAccess(user)).toEqual([]);
    expect((await ctx.t.store.assignments.list()).filter((a) => a.principalId === user)).toEqual([]);
  });
});

describe('GET /api/admin/audit', () => {
  it('pages newest first with limit and beforeId, filters by action, and shows ISO times and the IP', async () => {
    for (const name of ['Audit A', 'Audit B', 'Audit C'])
      await api('POST', '/api/admin/groups', { body: { name } });
    const first = (await api('GET', '/api/admin/audit?limit=2&action=admin.group.create')).json<{
      entries: Audit[];
    }>().entries;
    expect(first.map((e) => e.details.name)).toEqual(['Audit C', 'Audit B']);
    expect(first[0]).toMatchObject({ actor: 'root', action: 'admin.group.create', ip: '127.0.0.1' });
    expect(new Date(first[0]?.at ?? '').toISOString()).toBe(first[0]?.at);
    const next = (
      await api('GET', `/api/admin/audit?limit=1&action=admin.group.create&beforeId=${first[1]?.id ?? 0}`)
    ).json<{ entries: Audit[] }>().entries;
    expect(next.map((e) => e.details.name)).toEqual(['Audit A']);
  });

  it.each(['limit=0', 'limit=1001', 'limit=x', 'beforeId=-1', 'unknown=1'])(
    'refuses ?%s with 400',
    async (query) => {
      const response = await api('GET', `/api/admin/audit?${query}`);
      if (query === 'unknown=1') {
        // Unknown query keys are dropped, not an error: links with extra parameters keep working.
        expect(response.statusCode).toBe(200);
      } else {
        expect(response.statusCode).toBe(400);
        expect(response.json<{ message: string }>().message).toContain(query.split('=')[0]);
      }
    },
  );

  it('never records secrets: no passwords, hashes, invite tokens or TOTP secrets anywhere in the log', async () => {
    const created = (
      await api('POST', '/api/admin/users', {
        body: { username: 'secretive', password: 'Sup3r secret passphrase' },
      })
    ).json<{ id: string }>();
    const invite = (await api('POST', `/api/admin/users/${created.id}/reset-password`)).json<{
      inviteUrl: string;
    }>();
    const log = (await api('GET', '/api/admin/audit?limit=1000')).body;
    expect(log).not.toContain('Sup3r secret passphrase');
    expect(log).not.toContain('$argon2');
    expect(log).not.toContain(new URL(invite.inviteUrl).searchParams.get('invite') ?? 'unreachable');
  });
});
