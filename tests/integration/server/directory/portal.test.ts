import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDirectory } from '../../../../server/directory/seed.js';
import type { AccessChange } from '../../../../server/directory/directory-service.js';
import {
  adminCaller,
  call,
  createUser,
  signIn,
  startAdminApp,
  type AdminTestContext,
} from './admin-client.js';

let ctx: AdminTestContext;
let api: ReturnType<typeof adminCaller>;

beforeAll(async () => {
  ctx = await startAdminApp({
    regions: [
      { id: 'eu-west-1', name: 'Europe (Ireland)' },
      { id: 'us-east-1', name: 'US East (N. Virginia)' },
    ],
    defaultRegion: 'us-east-1',
  });
  api = adminCaller(ctx);
});
afterAll(async () => {
  await ctx.close();
});

describe('GET /api/portal', () => {
  it('shows direct and group assignments, once each, sorted, with the regions', async () => {
    for (const [accountId, name] of [
      ['100000000001', 'Zeta'],
      ['100000000002', 'alpha'],
    ])
      await api('POST', '/api/admin/accounts', { body: { accountId, name } });
    const user = await createUser(ctx.t, 'portal-user');
    const group = (await api('POST', '/api/admin/groups', { body: { name: 'Portal group' } })).json<{
      id: string;
    }>();
    await api('PUT', `/api/admin/groups/${group.id}/members`, { body: { userIds: [user] } });
    const assign = (principalType: string, principalId: string, accountId: string, permissionSet: string) =>
      api('POST', '/api/admin/assignments', {
        body: { principalType, principalId, accountId, permissionSet },
      });
    expect((await assign('user', user, '100000000001', 'ReadOnlyAccess')).statusCode).toBe(201);
    expect((await assign('group', group.id, '100000000001', 'ReadOnlyAccess')).statusCode).toBe(201);
    expect((await assign('group', group.id, '100000000002', 'PowerUserAccess')).statusCode).toBe(201);
    expect((await assign('user', user, '100000000002', 'Billing')).statusCode).toBe(201);

    const response = await call(ctx.t, 'GET', '/api/portal', { cookie: await signIn(ctx.t, user) });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      regions: [
        { id: 'eu-west-1', name: 'Europe (Ireland)' },
        { id: 'us-east-1', name: 'US East (N. Virginia)' },
      ],
      defaultRegion: 'us-east-1',
      assignments: [
        {
          accountId: '100000000002',
          accountName: 'alpha',
          permissionSet: 'Billing',
          permissionSetDescription: expect.stringContaining('billing'),
          sessionDurationS: 3600,
        },
        {
          accountId: '100000000002',
          accountName: 'alpha',
          permissionSet: 'PowerUserAccess',
          permissionSetDescription: expect.any(String),
          sessionDurationS: 3600,
        },
        {
          accountId: '100000000001',
          accountName: 'Zeta',
          permissionSet: 'ReadOnlyAccess',
          permissionSetDescription: expect.any(String),
          sessionDurationS: 3600,
        },
      ],
      // A group without a weekly limit: unlimited (tests/integration/server/usage covers limits).
      usage: { usedS: 0, limitS: null, resetsAt: expect.any(String) },
    });
    // Role ARNs and policies are for the server, not the page.
    expect(response.body).not.toContain('arn:aws');
  });

  it('shows nothing for an unassigned user, and nothing for a user whose group lost its assignment', async () => {
    const lonely = await createUser(ctx.t, 'unassigned');
    const response = await call(ctx.t, 'GET', '/api/portal', { cookie: await signIn(ctx.t, lonely) });
    expect(response.statusCode).toBe(200);
    expect(response.json<{ assignments: unknown[] }>().assignments).toEqual([]);

    const member = await createUser(ctx.t, 'loses-access');
    const group = (await api('POST', '/api/admin/groups', { body: { name: 'Temporary' } })).json<{
      id: string;
    }>();
    await api('PUT', `/api/admin/groups/${group.id}/members`, { body: { userIds: [member] } });
    const assignment = (
      await api('POST', '/api/admin/assignments', {
        body: {
          principalType: 'group',
          principalId: group.id,
          accountId: '100000000001',
          permissionSet: 'Billing',
        },
      })
    ).json<{ id: string }>();
    const cookie = await signIn(ctx.t, member);
    expect(
      (await call(ctx.t, 'GET', '/api/portal', { cookie })).json<{ assignments: unknown[] }>().assignments,
    ).toHaveLength(1);

    const changes: AccessChange[] = [];
    const listener = ctx.t.app.directory.onAccessChanged((change) => changes.push(change));
    await api('DELETE', `/api/admin/assignments/${assignment.id}`);
    listener.dispose();
    expect(changes).toEqual([{ userIds: [member] }]);
    expect(
      (await call(ctx.t, 'GET', '/api/portal', { cookie })).json<{ assignments: unknown[] }>().assignments,
    ).toEqual([]);
  });

  it('needs a signed-in user', async () => {
    const response = await call(ctx.t, 'GET', '/api/portal', { cookie: undefined });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ code: 'COVE_ERR_AUTH_REQUIRED' });
  });
});

describe('app.directory.accessFor', () => {
  it('answers the resolved entry only for an assigned account and permission set', async () => {
    const user = await createUser(ctx.t, 'terminal-user');
    await api('POST', '/api/admin/assignments', {
      body: {
        principalType: 'user',
        principalId: user,
        accountId: '100000000001',
        permissionSet: 'AdministratorAccess',
      },
    });
    expect(await ctx.t.app.directory.accessFor(user, '100000000001', 'AdministratorAccess')).toEqual({
      accountId: '100000000001',
      accountName: 'Zeta',
      permissionSetId: expect.any(String),
      permissionSet: 'AdministratorAccess',
      permissionSetDescription: expect.any(String),
      sessionDurationS: 3600,
      roleArn: 'arn:aws:iam::100000000001:role/Cove-AdministratorAccess',
      sessionPolicy: null,
    });
    expect(await ctx.t.app.directory.accessFor(user, '100000000002', 'AdministratorAccess')).toBeUndefined();
    expect(await ctx.t.app.directory.accessFor(user, '100000000001', 'ReadOnlyAccess')).toBeUndefined();
    expect(
      await ctx.t.app.directory.accessFor('no-such-user', '100000000001', 'AdministratorAccess'),
    ).toBeUndefined();

    await api('PATCH', `/api/admin/users/${user}`, { body: { disabled: true } });
    expect(await ctx.t.app.directory.accessFor(user, '100000000001', 'AdministratorAccess')).toBeUndefined();
  });
});

describe('seedDirectory', () => {
  it('gives a new store the admins group and the four default permission sets', async () => {
    const sets = await ctx.t.store.permissionSets.list();
    expect(sets.map((s) => s.name).sort()).toEqual([
      'AdministratorAccess',
      'Billing',
      'PowerUserAccess',
      'ReadOnlyAccess',
    ]);
    for (const set of sets) {
      expect(set.sessionDurationS).toBe(3600);
      expect(set.roleArnTemplate).toBe('arn:aws:iam::{accountId}:role/Cove-{name}');
      expect(set.description.length).toBeGreaterThan(10);
    }
    expect(await ctx.t.store.groups.getByName('admins')).toBeDefined();
  });

  it('is idempotent and does not bring back deleted permission sets, even when all are gone', async () => {
    const again = await seedDirectory(ctx.t.app);
    expect(again).toEqual({ adminGroupCreated: false, permissionSetsCreated: [] });

    const billing = await ctx.t.store.permissionSets.getByName('Billing');
    expect((await api('DELETE', `/api/admin/permission-sets/${billing?.id ?? ''}`)).statusCode).toBe(204);
    await seedDirectory(ctx.t.app);
    expect(await ctx.t.store.permissionSets.getByName('Billing')).toBeUndefined();

    for (const set of await ctx.t.store.permissionSets.list())
      await api('DELETE', `/api/admin/permission-sets/${set.id}`);
    await seedDirectory(ctx.t.app);
    expect(await ctx.t.store.permissionSets.list()).toEqual([]);
    expect((await ctx.t.store.audit.list({ action: 'directory.seed' })).length).toBe(1);
  });
});
