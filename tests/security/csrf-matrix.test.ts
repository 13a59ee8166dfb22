/**
 * SECURITY-TESTS H07: the CSRF matrix on every state-changing route. The routes are read from the
 * running app (`printRoutes`), so a route added later is in the matrix without anyone editing this
 * file, and a route that slips past the CSRF hook fails here. Cove's CSRF defence is the exact
 * Origin (or Referer) match plus a JSON body type, with SameSite cookies behind it; there is no
 * CSRF token, so "a missing token" and "another user's token" reduce to the Origin cases.
 * The AWS CLI's SSO APIs under /aws take no cookies (a client secret or bearer token is the only
 * credential), so the hook lets them through; here they must refuse the forged request for want of
 * that credential, the admin's cookie notwithstanding.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { origin, region, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';

const stateChanging = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const cookieless = (pattern: string): boolean => pattern.startsWith('/aws/');

/** `[method, pattern]` for every route, from Fastify's route tree. */
function routesOf(tree: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([\s│├└─]*)(\S.*?) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) continue;
    const depth = (match[1] ?? '').length / 4;
    const segment = match[2] ?? '';
    const parent = depth === 0 ? '' : (stack[depth - 1] ?? '');
    const path = depth === 1 && !segment.startsWith('/') ? `/${segment}` : `${parent}${segment}`;
    stack[depth] = path === '//' ? '/' : path;
    for (const method of (match[3] ?? '').split(', ')) out.push([method, stack[depth] as string]);
  }
  return out;
}

let rig: SecurityRig;
let admin: RigUser;
let victim: RigUser;
const ids: Record<string, string> = {};
const account = '444455556666';

beforeAll(async () => {
  rig = await startSecurityRig();
  admin = await rig.user('admin', { admin: true });
  victim = await rig.user('victim');
  ids.user = victim.id;
  ids.group = (await rig.request(admin, 'POST', '/api/admin/groups', { name: 'Csrf' })).json<{
    id: string;
  }>().id;
  await rig.request(admin, 'POST', '/api/admin/accounts', { accountId: account, name: 'Csrf account' });
  ids.permissionSet = (await rig.t.store.permissionSets.getByName('ReadOnlyAccess'))?.id ?? '';
  ids.assignment = (
    await rig.request(admin, 'POST', '/api/admin/assignments', {
      principalType: 'user',
      principalId: victim.id,
      accountId: account,
      permissionSet: 'ReadOnlyAccess',
    })
  ).json<{ id: string }>().id;
  ids.terminal = await rig.createTerminal(admin);
  // The environment and shell start in the background after the 201; on PostgreSQL that can
  // outlast the first snapshot, and their driver calls would read as a forged request's.
  await vi.waitFor(() => expect(rig.driver.calls.some((c) => c.startsWith('openShell'))).toBe(true));
});
afterAll(async () => {
  await rig?.close();
});

/** Real ids for the path parameters, so a route that skipped the check would really act. */
function fill(pattern: string): string {
  return pattern
    .replace(':region', region)
    .replace(':userId', victim.id)
    .replace(':groupId', ids.group as string)
    .replace(':accountId', account)
    .replace(':token', 'x')
    .replace(/\/admin\/users\/:id/, `/admin/users/${ids.user}`)
    .replace(/\/groups\/:id/, `/groups/${ids.group}`)
    .replace(/\/permission-sets\/:id/, `/permission-sets/${ids.permissionSet}`)
    .replace(/\/assignments\/:id/, `/assignments/${ids.assignment}`)
    .replace(/\/terminals\/:id/, `/terminals/${ids.terminal}`)
    .replace(/:[A-Za-z]+/g, 'x');
}

/** Bodies an admin's same-origin request would succeed with (the worst case for a forged one). */
function bodyFor(method: string, pattern: string): unknown {
  const bodies: Record<string, unknown> = {
    'POST /api/auth/login': { username: victim.username, password: 'whatever-password' },
    'POST /api/auth/password': { currentPassword: 'a-password-1', newPassword: 'b-password-22' },
    'POST /api/admin/users': { username: 'csrf-made', groups: ['admins'] },
    'PATCH /api/admin/users/:id': { disabled: true },
    'POST /api/admin/groups': { name: 'CsrfMade' },
    'PATCH /api/admin/groups/:id': { name: 'CsrfRenamed' },
    'PUT /api/admin/groups/:id/members': { userIds: [victim.id] },
    'POST /api/admin/groups/:groupId/prestart': { region },
    'POST /api/admin/accounts': { accountId: '777777777777', name: 'Csrf made' },
    'PATCH /api/admin/accounts/:accountId': { name: 'Csrf renamed' },
    'POST /api/admin/permission-sets': { name: 'CsrfAccess' },
    'PATCH /api/admin/permission-sets/:id': { sessionDurationS: 43200 },
    'POST /api/admin/assignments': {
      principalType: 'user',
      principalId: victim.id,
      accountId: account,
      permissionSet: 'AdministratorAccess',
    },
    'DELETE /api/environments/:region/home': { confirm: 'delete' },
    'POST /api/environments/:region/clones': { git: 'https://git.example.org/acme/tools.git' },
    'DELETE /api/admin/homes/:userId/:region': { confirm: 'delete' },
  };
  return bodies[`${method} ${pattern}`] ?? {};
}

/** Everything a forged request could change. */
async function snapshot(): Promise<string> {
  const s = rig.t.store;
  return JSON.stringify([
    (await s.users.list()).map((u) => [u.id, u.username, u.disabled, u.passwordHash, u.totpSecret]),
    (await s.groups.list()).map((g) => [g.id, g.name]),
    await s.groups.members(ids.group as string),
    await s.accounts.list(),
    await s.permissionSets.list(),
    await s.assignments.list(),
    // SCIM's refusals are audited (the point of SC cases); they change nothing else.
    (await s.audit.list({})).filter((e) => e.action !== 'scim.refused').length,
    rig.t.app.terminals.list(admin.id).map((t) => t.id),
    rig.driver.calls.length,
  ]);
}

const forged: Array<[string, Record<string, string>, number]> = [
  ['a foreign Origin', { origin: 'https://evil.example', 'content-type': 'application/json' }, 403],
  ['Origin: null', { origin: 'null', 'content-type': 'application/json' }, 403],
  [
    'no Origin and Sec-Fetch-Site: cross-site',
    { 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' },
    403,
  ],
  [
    'no Origin and a foreign Referer',
    { referer: 'https://evil.example/x', 'content-type': 'application/json' },
    403,
  ],
  ['a sibling-port Origin', { origin: 'http://127.0.0.1:8081', 'content-type': 'application/json' }, 403],
  ['a text/plain body', { origin, 'content-type': 'text/plain' }, 415],
  ['a form body', { origin, 'content-type': 'application/x-www-form-urlencoded' }, 415],
  ['a multipart body', { origin, 'content-type': 'multipart/form-data; boundary=x' }, 415],
];

describe('H07 CSRF on every state-changing route', () => {
  it('H07 the route list is read from the app and holds the routes the matrix must cover', () => {
    const routes = routesOf(rig.t.app.printRoutes({ commonPrefix: false }));
    const changing = routes.filter(([m]) => stateChanging.has(m)).map(([m, p]) => `${m} ${p}`);
    expect(changing).toEqual(
      expect.arrayContaining([
        'POST /api/auth/logout',
        'POST /api/environments/:region/terminals',
        'DELETE /api/environments/:region/terminals/:id',
        'POST /api/admin/users',
        'DELETE /api/admin/assignments/:id',
        'POST /api/sso/requests/:userCode/decision',
        'POST /aws/oidc/token',
        'POST /aws/portal/logout',
      ]),
    );
    // Only the AWS APIs skip the Origin rule, never a cookie route.
    expect(changing.filter((r) => cookieless(r.split(' ')[1] ?? ''))).toEqual([
      'POST /aws/oidc/client/register',
      'POST /aws/oidc/device_authorization',
      'POST /aws/oidc/token',
      'POST /aws/portal/logout',
    ]);
    expect(changing.length).toBeGreaterThan(25);
  });

  it.each(forged)(
    'H07 every state-changing route refuses %s and nothing changes',
    async (_name, headers, status) => {
      const routes = routesOf(rig.t.app.printRoutes({ commonPrefix: false })).filter(([m]) =>
        stateChanging.has(m),
      );
      const before = await snapshot();
      for (const [method, pattern] of routes) {
        const body = bodyFor(method, pattern);
        const isJson = headers['content-type'] === 'application/json';
        const response = await rig.t.app.inject({
          method: method as 'POST',
          url: fill(pattern),
          headers: { ...headers, cookie: admin.cookie },
          payload: isJson ? JSON.stringify(body) : 'a=1&b=2',
        });
        if (pattern.startsWith('/scim/v2/')) {
          // The machine API, exempt from the origin rule: the admin's cookie does not count there,
          // only a SCIM bearer token (tests/security/scim.test.ts), so the forgery is a 401.
          expect(response.statusCode, `${method} ${pattern}`).toBe(401);
          expect(response.json<{ schemas: string[] }>().schemas).toEqual([
            'urn:ietf:params:scim:api:messages:2.0:Error',
          ]);
          expect(response.headers['set-cookie'], `${method} ${pattern}`).toBeUndefined();
          continue;
        }
        if (cookieless(pattern)) {
          // AWS's own refusal: no client secret or bearer token, whatever cookie came along.
          expect([400, 401], `${method} ${pattern}`).toContain(response.statusCode);
          expect(response.headers['x-amzn-errortype'], `${method} ${pattern}`).toMatch(
            /^(InvalidRequestException|InvalidClientException|UnauthorizedException)$/,
          );
        } else {
          expect(response.statusCode, `${method} ${pattern}`).toBe(status);
          expect(response.json<{ code: string }>().code, `${method} ${pattern}`).toBe(
            status === 403 ? 'COVE_ERR_CSRF' : 'COVE_ERR_REQUEST_MEDIA_TYPE',
          );
        }
        expect(response.headers['set-cookie'], `${method} ${pattern}`).toBeUndefined();
      }
      expect(await snapshot()).toBe(before);
      // The admin's session survived every forged logout.
      expect((await rig.request(admin, 'GET', '/api/me')).statusCode).toBe(200);
      await rig.expectHealthy();
    },
  );

  it('H07 the same request from our own origin does go through (the matrix is not testing a dead route)', async () => {
    const before = await snapshot();
    const made = await rig.request(admin, 'POST', '/api/admin/groups', { name: 'Same-origin made' });
    expect(made.statusCode).toBe(201);
    expect(await snapshot()).not.toBe(before);
  });

  it('H07 logout via GET is not a route (404) and the session stays', async () => {
    for (const method of ['GET', 'HEAD'] as const) {
      const response = await rig.t.app.inject({
        method,
        url: '/api/auth/logout',
        headers: { cookie: victim.cookie },
      });
      expect([404, 405], method).toContain(response.statusCode);
      expect(response.headers['set-cookie']).toBeUndefined();
    }
    expect((await rig.request(victim, 'GET', '/api/me')).statusCode).toBe(200);
    expect(await rig.t.store.audit.list({ action: 'auth.logout' })).toEqual([]);
  });
});
