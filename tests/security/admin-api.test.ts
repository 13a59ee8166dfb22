/**
 * The admin API's guards (I02, H07, A03 for /api/admin/*) and its failure mode when the database
 * is gone (clear 503, no internals). Every case also checks that nothing changed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdWriteLock } from '../helpers/test-store.js';
import {
  adminCaller,
  call,
  createUser,
  origin,
  signIn,
  startAdminApp,
  type AdminTestContext,
} from '../integration/server/directory/admin-client.js';

let ctx: AdminTestContext;
let api: ReturnType<typeof adminCaller>;
let userCookie: string;
let pendingCookie: string;
let victimId: string;
let groupId: string;
let setId: string;
let assignmentId: string;

beforeAll(async () => {
  ctx = await startAdminApp();
  api = adminCaller(ctx);
  const plain = await createUser(ctx.t, 'plain-user');
  userCookie = await signIn(ctx.t, plain);
  const pending = await createUser(ctx.t, 'pending-mfa');
  pendingCookie = `${ctx.t.app.sessionCookieName}=${(await ctx.t.app.sessions.create(pending, 'mfa')).token}`;
  victimId = await createUser(ctx.t, 'victim');
  groupId = (await api('POST', '/api/admin/groups', { body: { name: 'Guarded' } })).json<{ id: string }>().id;
  await api('POST', '/api/admin/accounts', { body: { accountId: '555555555555', name: 'Guarded account' } });
  setId = (await ctx.t.store.permissionSets.getByName('ReadOnlyAccess'))?.id ?? '';
  assignmentId = (
    await api('POST', '/api/admin/assignments', {
      body: {
        principalType: 'user',
        principalId: victimId,
        accountId: '555555555555',
        permissionSet: 'ReadOnlyAccess',
      },
    })
  ).json<{ id: string }>().id;
});
afterAll(async () => {
  await ctx.close();
});

/** Every admin route with a body that would succeed for an admin. */
const routes = (): [string, string, unknown][] => [
  ['GET', '/api/admin/users', undefined],
  ['POST', '/api/admin/users', { username: 'intruder-made' }],
  ['POST', '/api/admin/users/bulk', 'name,email,group\nintruder-bulk,,admins\n'],
  ['PATCH', `/api/admin/users/${victimId}`, { disabled: true }],
  ['POST', `/api/admin/users/${victimId}/reset-password`, undefined],
  ['POST', `/api/admin/users/${victimId}/reset-mfa`, undefined],
  ['DELETE', `/api/admin/users/${victimId}`, undefined],
  ['GET', '/api/admin/groups', undefined],
  ['POST', '/api/admin/groups', { name: 'Intruders' }],
  ['PATCH', `/api/admin/groups/${groupId}`, { name: 'Renamed by intruder' }],
  ['PUT', `/api/admin/groups/${groupId}/members`, { userIds: [victimId] }],
  ['POST', `/api/admin/groups/${groupId}/prestart`, { region: 'us-east-1' }],
  ['GET', '/api/admin/prestarts/any-id', undefined],
  ['DELETE', `/api/admin/groups/${groupId}`, undefined],
  ['GET', '/api/admin/accounts', undefined],
  ['POST', '/api/admin/accounts', { accountId: '666666666666', name: 'Intruder account' }],
  ['PATCH', '/api/admin/accounts/555555555555', { name: 'Renamed by intruder' }],
  ['DELETE', '/api/admin/accounts/555555555555', undefined],
  ['GET', '/api/admin/permission-sets', undefined],
  ['POST', '/api/admin/permission-sets', { name: 'IntruderAccess' }],
  ['PATCH', `/api/admin/permission-sets/${setId}`, { sessionDurationS: 43200 }],
  ['DELETE', `/api/admin/permission-sets/${setId}`, undefined],
  ['GET', '/api/admin/assignments', undefined],
  [
    'POST',
    '/api/admin/assignments',
    {
      principalType: 'user',
      principalId: victimId,
      accountId: '555555555555',
      permissionSet: 'AdministratorAccess',
    },
  ],
  ['DELETE', `/api/admin/assignments/${assignmentId}`, undefined],
  ['GET', '/api/admin/audit', undefined],
];

/** A fingerprint of everything an admin route could change. */
async function snapshot(): Promise<string> {
  const s = ctx.t.store;
  const victim = await s.users.get(victimId);
  return JSON.stringify([
    (await s.users.list()).map((u) => [u.username, u.disabled, u.passwordHash, u.totpSecret]),
    (await s.groups.list()).map((g) => [g.name, g.description]),
    await s.groups.members(groupId),
    await s.accounts.list(),
    await s.permissionSets.list(),
    await s.assignments.list(),
    victim,
  ]);
}

describe('I02: admin routes need an administrator', () => {
  it('I02 answers 401 without a session, on every admin route, and changes nothing', async () => {
    const before = await snapshot();
    for (const [method, url, body] of routes()) {
      const response = await call(ctx.t, method as 'GET', url, { cookie: undefined, body });
      expect(response.statusCode, `${method} ${url}`).toBe(401);
      expect(response.json()).toMatchObject({ code: 'COVE_ERR_AUTH_REQUIRED' });
    }
    expect(await snapshot()).toBe(before);
  });

  it('I02 answers 403 to a signed-in non-admin, on every admin route, and changes nothing', async () => {
    const before = await snapshot();
    for (const [method, url, body] of routes()) {
      const response = await call(ctx.t, method as 'GET', url, { cookie: userCookie, body });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
      expect(response.json()).toEqual({
        code: 'COVE_ERR_ADMIN_REQUIRED',
        message: 'Only administrators can do that.',
      });
    }
    expect(await snapshot()).toBe(before);
  });

  it('I02 refuses a non-admin before looking at the body: a bad body still gets 403, not 400', async () => {
    const response = await call(ctx.t, 'POST', '/api/admin/users', {
      cookie: userCookie,
      body: { username: 42, extra: true },
    });
    expect(response.statusCode).toBe(403);
  });

  it('A03 answers 401 to a password-ok, MFA-pending session on every admin route and the portal', async () => {
    const before = await snapshot();
    for (const [method, url, body] of [
      ...routes(),
      ['GET', '/api/portal', undefined] as [string, string, unknown],
    ]) {
      const response = await call(ctx.t, method as 'GET', url, { cookie: pendingCookie, body });
      expect(response.statusCode, `${method} ${url}`).toBe(401);
    }
    expect(await snapshot()).toBe(before);
  });

  it('I02 still works for the admin afterwards (the guards did not break the routes)', async () => {
    expect((await api('GET', '/api/admin/users')).statusCode).toBe(200);
    expect((await api('GET', '/api/admin/audit')).statusCode).toBe(200);
  });
});

describe('H07: CSRF on admin routes', () => {
  it.each([
    ['no Origin', {}],
    ['a foreign Origin', { origin: 'https://evil.example' }],
    ['Origin: null', { origin: 'null' }],
  ])('refuses an admin POST with %s with 403 and creates nothing', async (_name, headers) => {
    const before = await snapshot();
    const response = await ctx.t.app.inject({
      method: 'POST',
      url: '/api/admin/users',
      headers: { cookie: ctx.adminCookie, 'content-type': 'application/json', ...headers },
      payload: JSON.stringify({ username: 'csrf-made', groups: ['admins'] }),
    });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'COVE_ERR_CSRF' });
    expect(await snapshot()).toBe(before);
    expect(await ctx.t.store.users.getByUsername('csrf-made')).toBeUndefined();
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded'])(
    'H07 refuses a %s body with 415',
    async (type) => {
      const response = await ctx.t.app.inject({
        method: 'POST',
        url: '/api/admin/users',
        headers: { cookie: ctx.adminCookie, origin, 'content-type': type },
        payload: 'username=csrf-form',
      });
      expect(response.statusCode).toBe(415);
      expect(await ctx.t.store.users.getByUsername('csrf-form')).toBeUndefined();
    },
  );
});

describe('database failure', () => {
  it('answers 503 when another process holds the write lock past the busy timeout, and recovers', async () => {
    const release = await holdWriteLock(ctx.t.dataDir, ctx.t.store);
    try {
      const locked = await api('POST', '/api/admin/groups', { body: { name: 'While locked' } });
      expect(locked.statusCode).toBe(503);
      expect(locked.json()).toMatchObject({ code: 'COVE_ERR_STORE_UNAVAILABLE' });
      expect(locked.body).not.toMatch(/SQLITE|busy|lock|timeout|\.ts:\d+/i);
    } finally {
      await release();
    }
    expect(await ctx.t.store.groups.getByName('While locked')).toBeUndefined();
    expect((await api('POST', '/api/admin/groups', { body: { name: 'While locked' } })).statusCode).toBe(201);
  });

  it('answers 503 with a coded message and no stack trace when the database is gone, and logs the cause', async () => {
    await ctx.t.store.close();
    for (const [method, url, body] of [
      ['GET', '/api/admin/users', undefined],
      ['POST', '/api/admin/groups', { name: 'After close' }],
      ['GET', '/api/portal', undefined],
    ] as const) {
      const response = await call(ctx.t, method, url, { cookie: ctx.adminCookie, body });
      expect(response.statusCode, `${method} ${url}`).toBe(503);
      expect(response.json()).toEqual({
        code: 'COVE_ERR_STORE_UNAVAILABLE',
        message: 'Cove cannot reach its database right now. Try again in a moment.',
      });
      expect(response.body).not.toMatch(/\bat \S+ \(|sqlite|TypeError|\.ts:\d+/i);
    }
    expect(ctx.t.logs.join('')).toContain('COVE_ERR_STORE_UNAVAILABLE');
  });
});
