import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash } from '@node-rs/argon2';
import { hashToken } from '../../../../server/auth/session-service.js';
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
  ctx = await startAdminApp();
  api = adminCaller(ctx);
});
afterAll(async () => {
  await ctx.close();
});

const tokenOf = (inviteUrl: string): string => {
  const url = new URL(inviteUrl);
  const token = url.searchParams.get('invite') ?? url.hash.slice(1) ?? url.pathname.split('/').pop();
  if (!token) throw new Error(`no token in ${inviteUrl}`);
  return token;
};

async function userNamed(username: string) {
  const list = (await api('GET', '/api/admin/users')).json<{ username: string; id: string }[]>();
  return list.find((u) => u.username === username);
}

async function lastAudit(action: string) {
  const response = await api('GET', `/api/admin/audit?action=${encodeURIComponent(action)}&limit=1`);
  expect(response.statusCode).toBe(200);
  return response.json<{
    entries: {
      actor: string;
      action: string;
      target: string;
      details: Record<string, unknown>;
      at: string;
      ip: string;
    }[];
  }>().entries[0];
}

describe('POST /api/admin/users', () => {
  it('creates a user with a one-time invite link when no password is given', async () => {
    const response = await api('POST', '/api/admin/users', {
      body: { username: 'Dana', email: 'dana@example.com' },
    });
    expect(response.statusCode).toBe(201);
    const body = response.json<{ id: string; username: string; inviteUrl: string }>();
    expect(body.username).toBe('dana');
    expect(body.inviteUrl.startsWith(`${ctx.t.config.publicUrl}/`)).toBe(true);
    const invite = await ctx.t.store.invites.get(hashToken(tokenOf(body.inviteUrl)));
    expect(invite).toMatchObject({ userId: body.id, usedAt: null });
    expect((await ctx.t.store.users.get(body.id))?.passwordHash).toBeNull();

    const entry = await lastAudit('admin.user.create');
    expect(entry).toMatchObject({
      actor: 'root',
      target: `user:${body.id}`,
      details: { username: 'dana', invite: true },
    });
    expect(JSON.stringify(entry)).not.toContain(tokenOf(body.inviteUrl));
  });

  it('creates a user with a password and no invite, in the named groups', async () => {
    await api('POST', '/api/admin/groups', { body: { name: 'Engineers' } });
    const response = await api('POST', '/api/admin/users', {
      body: {
        username: 'erin',
        password: 'a long enough password',
        groups: ['engineers'],
        mfaRequired: true,
      },
    });
    expect(response.statusCode).toBe(201);
    const body = response.json<{ id: string; inviteUrl?: string }>();
    expect(body.inviteUrl).toBeUndefined();
    const stored = await ctx.t.store.users.get(body.id);
    expect(stored?.passwordHash).toMatch(/^\$argon2id\$/);
    expect(stored?.mfaRequired).toBe(true);
    expect((await ctx.t.store.groups.groupsOf(body.id)).map((g) => g.name)).toEqual(['Engineers']);
    const entry = await lastAudit('admin.user.create');
    expect(JSON.stringify(entry)).not.toContain('a long enough password');
  });

  it.each([
    ['Alice', ' alice '],
    ['bob', 'BOB'],
    ['ｃａｒｌ', 'carl'], // full-width letters are the same name after NFKC
  ])('refuses %j then %j as the same user name with 409', async (first, second) => {
    expect((await api('POST', '/api/admin/users', { body: { username: first } })).statusCode).toBe(201);
    const response = await api('POST', '/api/admin/users', { body: { username: second } });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ code: 'COVE_ERR_CONFLICT' });
    expect(response.json<{ message: string }>().message).toContain('already exists');
  });

  it.each([
    [{ username: '' }, 'username'],
    [{ username: 'has space' }, 'username'],
    [{ username: '=cmd()' }, 'username'],
    [{ username: 'x'.repeat(65) }, 'username'],
    [{ username: 'frank', email: 'not-an-email' }, 'email'],
    [{ username: 'frank', password: 'short' }, 'password'],
    [{ username: 'frank', groups: ['no-such-group'] }, 'groups'],
    [{ email: 'x@example.com' }, 'username'],
    [{ username: { first: 'x' } }, 'username'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    const response = await api('POST', '/api/admin/users', { body });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'COVE_ERR_REQUEST_INVALID' });
    expect(response.json<{ message: string }>().message).toContain(field);
    expect(await userNamed('frank')).toBeUndefined();
  });
});

describe('GET /api/admin/users', () => {
  it('lists users with their groups and no secrets', async () => {
    const id = await createUser(ctx.t, 'gina');
    await ctx.t.store.users.update(id, {
      passwordHash: await hash('secret-password-1', { algorithm: 2, memoryCost: 1024, timeCost: 1 }),
      totpSecret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
      lastLoginAt: Date.UTC(2026, 0, 2, 3, 4, 5),
    });
    const response = await api('GET', '/api/admin/users');
    expect(response.statusCode).toBe(200);
    const gina = response.json<Record<string, unknown>[]>().find((u) => u.username === 'gina');
    expect(gina).toEqual({
      id,
      username: 'gina',
      email: null,
      disabled: false,
      mfaEnrolled: true,
      mfaRequired: false,
      groups: [],
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      lastLoginAt: '2026-01-02T03:04:05.000Z',
      invite: null,
      source: 'local',
      provisionedBy: null,
    });
    expect(response.body).not.toMatch(/argon2|JBSWY3DP|passwordHash|totp/i);
    const root = response.json<Record<string, unknown>[]>().find((u) => u.username === 'root');
    expect(root?.groups).toEqual(['admins']);
  });
});

describe('a user who has not accepted the invite', () => {
  it('lists the invite’s expiry until the password is set, then none', async () => {
    const created = (await api('POST', '/api/admin/users', { body: { username: 'invitee' } })).json<{
      id: string;
      inviteUrl: string;
    }>();
    const listed = await userNamed('invitee');
    const ttlMs = ctx.t.config.auth.inviteTtlS * 1000;
    const expiresAt = Date.parse((listed as unknown as { invite: { expiresAt: string } }).invite.expiresAt);
    expect(Math.abs(expiresAt - (Date.now() + ttlMs))).toBeLessThan(60_000);

    // A new link replaces the old one: the expiry moves with it.
    await ctx.t.store.invites.deleteForUser(created.id);
    await ctx.t.store.invites.create({
      tokenHash: 'old',
      userId: created.id,
      expiresAt: Date.UTC(2020, 0, 1),
    });
    expect(await userNamed('invitee')).toMatchObject({ invite: { expiresAt: '2020-01-01T00:00:00.000Z' } });

    const reset = await api('POST', `/api/admin/users/${created.id}/reset-password`, { body: {} });
    const accept = await call(ctx.t, 'POST', '/api/auth/invite/accept', {
      body: {
        token: tokenOf(reset.json<{ inviteUrl: string }>().inviteUrl),
        password: 'invitee long password 1',
      },
    });
    expect(accept.statusCode).toBe(200);
    expect(await userNamed('invitee')).toMatchObject({ invite: null });
  });
});

describe('PATCH /api/admin/users/:id', () => {
  it('disables a user, ends their sessions, and writes an audit entry', async () => {
    const id = await createUser(ctx.t, 'hank');
    const cookie = await signIn(ctx.t, id);
    expect((await call(ctx.t, 'GET', '/api/portal', { cookie })).statusCode).toBe(200);

    const response = await api('PATCH', `/api/admin/users/${id}`, {
      body: { disabled: true, email: 'hank@example.com' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id, disabled: true, email: 'hank@example.com' });
    expect(await ctx.t.store.sessions.deleteForUser(id)).toEqual([]);
    expect((await call(ctx.t, 'GET', '/api/portal', { cookie })).statusCode).toBe(401);
    expect(await lastAudit('admin.user.disable')).toMatchObject({
      target: `user:${id}`,
      details: { username: 'hank', disabled: true, email: 'hank@example.com' },
    });

    const enabled = await api('PATCH', `/api/admin/users/${id}`, {
      body: { disabled: false, email: null, mfaRequired: true },
    });
    expect(enabled.json()).toMatchObject({ disabled: false, email: null, mfaRequired: true });
  });

  it('refuses bad input with 400 naming the field, and unknown ids with 404', async () => {
    const id = await createUser(ctx.t, 'ivan');
    const bad = await api('PATCH', `/api/admin/users/${id}`, { body: { email: 'nope' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ field: 'email' });
    const wrongType = await api('PATCH', `/api/admin/users/${id}`, { body: { disabled: 'sometimes' } });
    expect(wrongType.statusCode).toBe(400);
    expect(wrongType.json<{ message: string }>().message).toContain('disabled');
    expect((await api('PATCH', `/api/admin/users/${id}`, { body: {} })).statusCode).toBe(400);
    const missing = await api('PATCH', '/api/admin/users/00000000-0000-0000-0000-000000000000', {
      body: { disabled: true },
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'COVE_ERR_NOT_FOUND' });
  });

  it('does not let an admin disable themselves or the last admin', async () => {
    const self = await api('PATCH', `/api/admin/users/${ctx.adminId}`, { body: { disabled: true } });
    expect(self.statusCode).toBe(409);
    expect(self.json<{ message: string }>().message).toContain('your own');

    const other = await createUser(ctx.t, 'other-admin', { admin: true });
    const otherCookie = await signIn(ctx.t, other);
    // root is the only other enabled admin, so other-admin cannot disable root... once other-admin is disabled.
    await ctx.t.store.users.update(other, { disabled: false });
    const byOther = await call(ctx.t, 'PATCH', `/api/admin/users/${ctx.adminId}`, {
      cookie: otherCookie,
      body: { mfaRequired: false },
    });
    expect(byOther.statusCode).toBe(200);
    const disableOther = await api('PATCH', `/api/admin/users/${other}`, { body: { disabled: true } });
    expect(disableOther.statusCode).toBe(200);
    // Now root is the last enabled admin: nobody may delete it (an admin would have to be root itself).
    const last = await ctx.t.app.directory
      .updateUser(other, ctx.adminId, { disabled: true })
      .catch((e: unknown) => e);
    expect(last).toMatchObject({
      statusCode: 409,
      message: expect.stringContaining('last enabled administrator'),
    });
    expect((await ctx.t.store.users.get(ctx.adminId))?.disabled).toBe(false);
    await api('DELETE', `/api/admin/users/${other}`);
  });
});

describe('reset password and MFA', () => {
  it('reset-password clears the password, ends sessions and returns a fresh invite', async () => {
    const created = (
      await api('POST', '/api/admin/users', { body: { username: 'judy', password: 'first password here' } })
    ).json<{
      id: string;
    }>();
    const cookie = await signIn(ctx.t, created.id);
    const response = await api('POST', `/api/admin/users/${created.id}/reset-password`);
    expect(response.statusCode).toBe(200);
    const { inviteUrl } = response.json<{ inviteUrl: string }>();
    expect(await ctx.t.store.invites.get(hashToken(tokenOf(inviteUrl)))).toMatchObject({
      userId: created.id,
    });
    expect((await ctx.t.store.users.get(created.id))?.passwordHash).toBeNull();
    expect((await call(ctx.t, 'GET', '/api/portal', { cookie })).statusCode).toBe(401);
    expect(await lastAudit('admin.user.reset_password')).toMatchObject({ target: `user:${created.id}` });

    const again = (await api('POST', `/api/admin/users/${created.id}/reset-password`)).json<{
      inviteUrl: string;
    }>();
    expect(await ctx.t.store.invites.get(hashToken(tokenOf(inviteUrl)))).toBeUndefined();
    expect(again.inviteUrl).not.toBe(inviteUrl);
  });

  it('reset-mfa clears the enrollment', async () => {
    const id = await createUser(ctx.t, 'kate');
    await ctx.t.store.users.update(id, { totpSecret: 'JBSWY3DPEHPK3PXP' });
    const response = await api('POST', `/api/admin/users/${id}/reset-mfa`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id, mfaEnrolled: false });
    expect((await ctx.t.store.users.get(id))?.totpSecret).toBeNull();
    expect(await lastAudit('admin.user.reset_mfa')).toMatchObject({
      target: `user:${id}`,
      details: { username: 'kate' },
    });
  });

  it('answers 404 for unknown users', async () => {
    expect((await api('POST', '/api/admin/users/nope/reset-password')).statusCode).toBe(404);
    expect((await api('POST', '/api/admin/users/nope/reset-mfa')).statusCode).toBe(404);
  });
});

describe('DELETE /api/admin/users/:id', () => {
  it('deletes a user with their direct assignments', async () => {
    await api('POST', '/api/admin/accounts', { body: { accountId: '123123123123', name: 'Deletion test' } });
    const id = await createUser(ctx.t, 'leo');
    const assignment = await api('POST', '/api/admin/assignments', {
      body: {
        principalType: 'user',
        principalId: id,
        accountId: '123123123123',
        permissionSet: 'ReadOnlyAccess',
      },
    });
    expect(assignment.statusCode).toBe(201);
    await signIn(ctx.t, id);
    const revoked: string[] = [];
    const listener = ctx.t.app.sessions.onRevoked((_ids, userId) => revoked.push(userId));
    const response = await api('DELETE', `/api/admin/users/${id}`);
    listener.dispose();
    expect(response.statusCode).toBe(204);
    expect(response.body).toBe('');
    // Open shells learn that the user's sessions ended (the rows would otherwise cascade away silently).
    expect(revoked).toEqual([id]);
    expect(await ctx.t.store.users.get(id)).toBeUndefined();
    expect((await ctx.t.store.assignments.list()).some((a) => a.principalId === id)).toBe(false);
    expect(await lastAudit('admin.user.delete')).toMatchObject({
      target: `user:${id}`,
      details: { username: 'leo' },
    });
    expect((await api('DELETE', `/api/admin/users/${id}`)).statusCode).toBe(404);
  });

  it('refuses to delete yourself', async () => {
    const response = await api('DELETE', `/api/admin/users/${ctx.adminId}`);
    expect(response.statusCode).toBe(409);
    expect(await ctx.t.store.users.get(ctx.adminId)).toBeDefined();
  });

  it('refuses to delete the last enabled admin', async () => {
    const second = await createUser(ctx.t, 'second-admin', { admin: true });
    const secondCookie = await signIn(ctx.t, second);
    await ctx.t.store.users.update(ctx.adminId, { disabled: true });
    try {
      // root is disabled, so second-admin is the last enabled one; a third admin tries to remove it.
      const third = await createUser(ctx.t, 'third-admin', { admin: true });
      await ctx.t.store.users.update(third, { disabled: true });
      const response = await ctx.t.app.directory.deleteUser(third, second).catch((e: unknown) => e);
      expect(response).toMatchObject({ statusCode: 409 });
      expect(await ctx.t.store.users.get(second)).toBeDefined();
      const bySecond = await call(ctx.t, 'DELETE', `/api/admin/users/${third}`, { cookie: secondCookie });
      expect(bySecond.statusCode).toBe(204);
    } finally {
      await ctx.t.store.users.update(ctx.adminId, { disabled: false });
    }
  });
});

describe('POST /api/admin/users/bulk (CSV)', () => {
  it('creates every user, their groups, and answers CSV with working invite links', async () => {
    const csv = [
      'name,email,group',
      'student1,s1@example.com,Class 2026',
      '"student2","s2@example.com","Class 2026;Engineers"',
      'student3,,',
      '"Student4","s4@example.com","Class, with comma"',
    ].join('\r\n');
    const response = await api('POST', '/api/admin/users/bulk', { body: csv });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.headers['content-type']).toMatch(/^text\/csv/);
    const lines = response.body.trimEnd().split('\r\n');
    expect(lines[0]).toBe('username,email,group,inviteUrl');
    expect(lines).toHaveLength(5);
    expect(lines[1]).toMatch(/^student1,s1@example\.com,Class 2026,http:\/\/127\.0\.0\.1:8080\//);
    expect(lines[2]).toMatch(/^student2,s2@example\.com,Class 2026;Engineers,http/);
    expect(lines[3]).toMatch(/^student3,,,http/);
    expect(lines[4]).toMatch(/^student4,s4@example\.com,"Class, with comma",http/);

    for (const line of lines.slice(1)) {
      const url = line.slice(line.lastIndexOf(',') + 1);
      const invite = await ctx.t.store.invites.get(hashToken(tokenOf(url)));
      expect(invite?.usedAt).toBeNull();
      // The link works on the sign-in side: the invite page knows whose it is.
      const check = await call(ctx.t, 'GET', `/api/auth/invite/${encodeURIComponent(tokenOf(url))}`, {
        cookie: undefined,
      });
      expect(check.statusCode).toBe(200);
      expect(check.json()).toMatchObject({ valid: true, username: line.slice(0, line.indexOf(',')) });
    }
    const groups = (await ctx.t.store.groups.list()).map((g) => g.name);
    expect(groups).toEqual(expect.arrayContaining(['Class 2026', 'Class, with comma', 'Engineers']));
    expect(groups.filter((g) => g.toLowerCase() === 'engineers')).toHaveLength(1);
    const s2 = await ctx.t.store.users.getByUsername('student2');
    expect((await ctx.t.store.groups.groupsOf(s2?.id ?? '')).map((g) => g.name)).toEqual([
      'Class 2026',
      'Engineers',
    ]);

    const entry = await lastAudit('admin.user.bulk_create');
    expect(entry?.details).toEqual({
      usernames: ['student1', 'student2', 'student3', 'student4'],
      groupsCreated: ['Class 2026', 'Class, with comma'],
    });
  });

  it('creates nothing when any row is bad, and lists every bad row', async () => {
    const before = await ctx.t.store.users.count();
    const groupsBefore = (await ctx.t.store.groups.list()).length;
    const csv = [
      'name,email,group',
      'okay1,ok1@example.com,New Group',
      'bad name,x@example.com,',
      'okay2,not-an-email,',
      'okay1,dup@example.com,',
      'root,,',
      'okay3,a@example.com,x,extra',
    ].join('\n');
    const response = await api('POST', '/api/admin/users/bulk', { body: csv });
    expect(response.statusCode).toBe(400);
    const body = response.json<{ message: string; rows: { row: number; problems: string[] }[] }>();
    expect(body.rows.map((r) => r.row)).toEqual([3, 4, 5, 6, 7]);
    expect(body.message).toContain('Nothing was created');
    expect(body.message).toContain('row 3: name');
    expect(body.message).toContain('row 4: email');
    expect(body.rows[2]?.problems[0]).toContain('already on row 2');
    expect(body.rows[3]?.problems[0]).toContain('already exists');
    expect(body.rows[4]?.problems[0]).toContain('4 fields');
    expect(await ctx.t.store.users.count()).toBe(before);
    expect((await ctx.t.store.groups.list()).length).toBe(groupsBefore);
    expect(await ctx.t.store.users.getByUsername('okay1')).toBeUndefined();
  });

  it.each([
    ['no header', 'alice2,a@example.com,g\n', 'header'],
    ['an unknown column', 'name,email,group,role\nx,,,admin\n', 'header'],
    ['only a header', 'name,email,group\n', 'no users'],
    ['an unclosed quote', 'name,email,group\n"x,,\n', 'row 2'],
    ['a stray quote', 'name,email,group\nx"y,,\n', 'row 2'],
  ])('refuses %s with 400', async (_name, csv, text) => {
    const before = await ctx.t.store.users.count();
    const response = await api('POST', '/api/admin/users/bulk', { body: csv });
    expect(response.statusCode).toBe(400);
    expect(response.json<{ message: string }>().message).toContain(text);
    expect(await ctx.t.store.users.count()).toBe(before);
  });

  it('accepts a charset parameter on the content type', async () => {
    const response = await api('POST', '/api/admin/users/bulk', {
      body: 'name\ncharset-user\n',
      headers: { 'content-type': 'text/csv; charset=utf-8' },
    });
    expect(response.statusCode).toBe(201);
  });

  it('accepts the columns in any order with a BOM, and only name required', async () => {
    const response = await api('POST', '/api/admin/users/bulk', {
      body: '\uFEFFname\nonly-name-1\nonly-name-2\n',
    });
    expect(response.statusCode).toBe(201);
    expect(response.body.split('\r\n')[1]).toMatch(/^only-name-1,,,http/);
  });

  it('refuses a CSV larger than its limit with 413, and a JSON body with 400', async () => {
    const huge = `name,email,group\n${'x,,\n'.repeat(70_000)}`;
    expect((await api('POST', '/api/admin/users/bulk', { body: huge })).statusCode).toBe(413);
    const json = await api('POST', '/api/admin/users/bulk', { body: { name: 'x' } });
    expect(json.statusCode).toBe(400);
  });
});

describe('concurrent creates of the same name', () => {
  it('let exactly one win; the others get 409 (or 400 for a CSV row), never a 500', async () => {
    const responses = await Promise.all(
      Array.from({ length: 18 }, (_, i) =>
        i % 3 === 0
          ? api('POST', '/api/admin/users/bulk', { body: `name,group\nRacer,Race group ${i}\n` })
          : i % 3 === 1
            ? api('POST', '/api/admin/users', {
                body: { username: 'racer', password: 'long enough password' },
              })
            : api('POST', '/api/admin/groups', { body: { name: 'Race' } }),
      ),
    );
    const codes = responses.map((r) => r.statusCode);
    expect(codes.every((c) => [201, 400, 409].includes(c))).toBe(true);
    expect(codes.filter((c) => c === 201)).toHaveLength(2); // one user, one group
    expect((await ctx.t.store.users.list()).filter((u) => u.username === 'racer')).toHaveLength(1);
    expect((await ctx.t.store.groups.list()).filter((g) => g.name.toLowerCase() === 'race')).toHaveLength(1);
  });
});
