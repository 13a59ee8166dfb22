/**
 * Attacks on the SCIM API (`/scim/v2`, issue 19 item 3). Proposed ids SC01–SC11, not in
 * SECURITY-TESTS.md yet (tests/security/README.md). Each refusal is an RFC 7644 error body,
 * creates no session, changes nothing, and is audited as `scim.refused` with its reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { scrubSecrets } from '../../server/logger.js';
import { okta } from '../integration/server/scim/idp-requests.js';
import { expectScimError, startScimRig, type ScimRig } from '../integration/server/scim/scim-rig.js';

let s: ScimRig;
let token: string;
let tokenId: string;

beforeAll(async () => {
  s = await startScimRig();
  ({ secret: token, id: tokenId } = await s.token('okta', 'Okta'));
});
afterAll(async () => {
  await s.close();
});

async function usersSnapshot(): Promise<string> {
  const store = s.rig.t.store;
  return JSON.stringify([
    (await store.users.list()).map((u) => [u.id, u.username, u.disabled, u.email]),
    (await store.groups.list()).map((g) => g.name),
  ]);
}

async function lastRefusal(): Promise<Record<string, unknown> | undefined> {
  return (await s.rig.t.store.audit.list({ action: 'scim.refused', limit: 1 }))[0]?.details;
}

const everyRoute: Array<[string, string]> = [
  ['GET', '/scim/v2/Users'],
  ['POST', '/scim/v2/Users'],
  ['GET', '/scim/v2/Users/x'],
  ['PUT', '/scim/v2/Users/x'],
  ['PATCH', '/scim/v2/Users/x'],
  ['DELETE', '/scim/v2/Users/x'],
  ['GET', '/scim/v2/Groups'],
  ['POST', '/scim/v2/Groups'],
  ['PATCH', '/scim/v2/Groups/x'],
  ['DELETE', '/scim/v2/Groups/x'],
  ['GET', '/scim/v2/ServiceProviderConfig'],
  ['GET', '/scim/v2/Schemas'],
  ['GET', '/scim/v2/ResourceTypes'],
  ['GET', '/scim/v2/NoSuchThing'],
];

describe('SC SCIM authentication', () => {
  it('SC01 no token: 401 with an RFC 7644 error body and WWW-Authenticate on every route, audited, nothing changes', async () => {
    const before = await usersSnapshot();
    for (const [method, url] of everyRoute) {
      const r = await s.scim(
        undefined,
        method as 'GET',
        url,
        method === 'GET' || method === 'DELETE' ? undefined : okta.createUser,
      );
      expectScimError(r, 401);
      expect(r.headers['www-authenticate'], `${method} ${url}`).toBe('Bearer realm="Cove SCIM"');
      expect(r.headers['set-cookie']).toBeUndefined();
    }
    expect(await usersSnapshot()).toBe(before);
    expect(await lastRefusal()).toMatchObject({ reason: 'no_token', status: 401 });
  });

  it('SC02 a revoked token is refused at once', async () => {
    const other = await s.token('okta', 'to revoke');
    expect((await s.scim(other.secret, 'GET', '/scim/v2/Users')).statusCode).toBe(200);
    expect(
      (await s.rig.request(s.admin, 'POST', `/api/admin/scim-tokens/${other.id}/revoke`)).statusCode,
    ).toBe(200);
    const before = await usersSnapshot();
    expectScimError(await s.scim(other.secret, 'POST', '/scim/v2/Users', okta.createUser), 401);
    expect(await usersSnapshot()).toBe(before);
    expect(await lastRefusal()).toMatchObject({ reason: 'revoked_token' });
  });

  it('SC03 another deployment’s token, a token with a changed letter, other formats and Basic auth are refused', async () => {
    const forged = [
      `Bearer cove_scim_${randomBytes(32).toString('base64url')}`,
      `Bearer ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`,
      `Bearer ${token.toUpperCase()}`,
      `Bearer ghp_${randomBytes(20).toString('hex')}`,
      `Bearer ${randomBytes(32).toString('base64url')}`,
      `Basic ${Buffer.from(`scim:${token}`).toString('base64')}`,
      `Bearer ${token} extra`,
      'Bearer',
    ];
    for (const authorization of forged) {
      const r = await s.rig.t.app.inject({
        method: 'GET',
        url: '/scim/v2/Users',
        headers: { authorization },
      });
      expectScimError(r, 401);
    }
  });

  it('SC12 an address that keeps sending bad tokens waits (429, Retry-After) and stops filling the audit log; others are unaffected', async () => {
    const scanner = '203.0.113.7';
    const probe = () =>
      s.rig.t.app.inject({
        method: 'GET',
        url: '/scim/v2/Users',
        remoteAddress: scanner,
        headers: { authorization: `Bearer cove_scim_${randomBytes(32).toString('base64url')}` },
      });
    const refusals = async () =>
      (await s.rig.t.store.audit.list({ action: 'scim.refused', limit: 500 })).length;
    const before = await refusals();
    for (let i = 0; i < 100; i++) expect((await probe()).statusCode).toBe(401);
    const limited = await probe();
    expectScimError(limited, 429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) expect((await probe()).statusCode).toBe(429);
    // Each refusal up to the limit is audited; the 429s after it are not.
    expect((await refusals()) - before).toBe(100);
    // The right token from that address waits too; the IdP's own address is unaffected.
    const blocked = await s.rig.t.app.inject({
      method: 'GET',
      url: '/scim/v2/Users',
      remoteAddress: scanner,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(blocked.statusCode).toBe(429);
    expect((await s.scim(token, 'GET', '/scim/v2/Users')).statusCode).toBe(200);
  });

  it('SC04 a session cookie alone (an administrator’s) never authorises SCIM, nor does it as a bearer token', async () => {
    const r = await s.rig.t.app.inject({
      method: 'POST',
      url: '/scim/v2/Users',
      headers: { cookie: s.admin.cookie, 'content-type': 'application/scim+json' },
      payload: JSON.stringify(okta.createUser),
    });
    expectScimError(r, 401);
    expectScimError(await s.scim(s.admin.token, 'GET', '/scim/v2/Users'), 401);
    expect(await s.rig.t.store.users.getByUsername('test.user@okta.local')).toBeUndefined();
  });

  it('SC05 a SCIM token authorises nothing outside /scim/v2', async () => {
    for (const [method, url] of [
      ['GET', '/api/me'],
      ['GET', '/api/admin/users'],
      ['GET', '/api/admin/scim-tokens'],
      ['GET', '/api/portal'],
    ] as const) {
      const r = await s.rig.t.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}`, origin: 'http://127.0.0.1:8080' },
      });
      expect(r.statusCode, `${method} ${url}`).toBe(401);
      expect(r.json<{ code: string }>().code).toBe('COVE_ERR_AUTH_REQUIRED');
    }
    const made = await s.rig.t.app.inject({
      method: 'POST',
      url: '/api/admin/scim-tokens',
      headers: {
        authorization: `Bearer ${token}`,
        origin: 'http://127.0.0.1:8080',
        'content-type': 'application/json',
      },
      payload: JSON.stringify({ name: 'escalate', providerId: 'okta' }),
    });
    expect(made.statusCode).toBe(401);
  });
});

describe('SC SCIM input', () => {
  it('SC06 filter injection attempts are 400 invalidFilter (or a literal that matches nobody); the table is intact', async () => {
    const local = await s.rig.user('victim');
    const before = await usersSnapshot();
    const refused = [
      'userName eq "x" or 1 eq 1',
      'userName eq "x" or userName pr',
      `userName eq "x'; DROP TABLE users; --`,
      "userName eq 'x' OR '1'='1'",
      'userName eq x',
      '(userName eq "x")',
      'userName co "a"',
      'userName sw ""',
      'userName pr',
      'password eq "x"',
      'emails[type eq "work"].value eq "a@b.c"',
      'userName eq "x" and externalId eq "y"',
      'userName eq "\\u0000',
      `userName eq "${'a'.repeat(2000)}"`,
      '',
    ];
    for (const filter of refused) {
      const r = await s.scim(token, 'GET', `/scim/v2/Users?filter=${encodeURIComponent(filter)}`);
      expectScimError(r, 400, 'invalidFilter');
    }
    // Quotes and SQL inside a proper string are only a name that nobody has.
    for (const literal of ['x\\" or \\"1\\"=\\"1', `${local.username}' OR '1'='1`, '%', '*']) {
      const r = await s.scim(
        token,
        'GET',
        `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${literal}"`)}`,
      );
      expect(r.statusCode, literal).toBe(200);
      expect(r.json<{ totalResults: number }>().totalResults, literal).toBe(0);
    }
    expect(await usersSnapshot()).toBe(before);
    expect(await lastRefusal()).toMatchObject({ reason: 'invalidFilter', tokenId });
  });

  it('SC07 10,000 members in one PATCH, 1,001 members, 101 operations and a 1 MB body are refused with a clear bound', async () => {
    const group = (
      await s.scim(token, 'POST', '/scim/v2/Groups', { ...okta.createGroup, displayName: 'Bounded' })
    ).json<{
      id: string;
    }>();
    const members = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        value: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      }));
    const patch = (n: number) => ({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'add', path: 'members', value: members(n) }],
    });
    const ten = await s.scim(token, 'PATCH', `/scim/v2/Groups/${group.id}`, patch(10_000));
    expectScimError(ten, 413);
    expect(ten.json<{ detail: string }>().detail).toMatch(/larger than 256 KiB|at most 1000 members/);
    const justOver = await s.scim(token, 'PATCH', `/scim/v2/Groups/${group.id}`, patch(1001));
    expectScimError(justOver, 413);
    expect(justOver.json<{ detail: string }>().detail).toContain('at most 1000 members');
    const createOver = await s.scim(token, 'POST', '/scim/v2/Groups', {
      ...okta.createGroup,
      displayName: 'Big',
      members: members(1001),
    });
    expectScimError(createOver, 413);
    const ops = await s.scim(token, 'PATCH', `/scim/v2/Groups/${group.id}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: Array.from({ length: 101 }, () => ({ op: 'replace', path: 'externalId', value: 'x' })),
    });
    expectScimError(ops, 413);
    expect(ops.json<{ detail: string }>().detail).toContain('at most 100 operations');
    const huge = await s.scim(token, 'POST', '/scim/v2/Users', {
      ...okta.createUser,
      displayName: 'x'.repeat(1024 * 1024),
    });
    expectScimError(huge, 413);
    expect(await s.rig.t.store.groups.members(group.id)).toEqual([]);
    expect(await s.rig.t.store.groups.getByName('Big')).toBeUndefined();
  });

  it('SC08 a wrong content type is 415 with a SCIM body; malformed JSON is 400 invalidSyntax', async () => {
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
    ]) {
      const r = await s.scim(token, 'POST', '/scim/v2/Users', JSON.stringify(okta.createUser), {
        'content-type': type,
      });
      expectScimError(r, 415);
    }
    expectScimError(await s.scim(token, 'POST', '/scim/v2/Users', '{"userName": '), 400, 'invalidSyntax');
    expect(await s.rig.t.store.users.getByUsername('test.user@okta.local')).toBeUndefined();
    expect(await lastRefusal()).toMatchObject({ reason: 'invalidSyntax' });
  });

  it('SC09 unknown schema URNs, a missing core schema and bad PATCH ops are 400 with the right scimType', async () => {
    const bad: Array<[unknown, string]> = [
      [
        { ...okta.createUser, schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:evil:schema'] },
        'invalidSyntax',
      ],
      [{ ...okta.createUser, schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'] }, 'invalidSyntax'],
      [{ ...okta.createUser, schemas: 'urn:ietf:params:scim:schemas:core:2.0:User' }, 'invalidSyntax'],
      [{ ...okta.createUser, userName: 'has space' }, 'invalidValue'],
      [{ ...okta.createUser, userName: '=cmd|calc' }, 'invalidValue'],
      [{ ...okta.createUser, active: 'maybe' }, 'invalidValue'],
      [{ ...okta.createUser, emails: [{ value: 'not-an-email' }] }, 'invalidValue'],
      [[okta.createUser], 'invalidSyntax'],
    ];
    for (const [body, scimType] of bad)
      expectScimError(await s.scim(token, 'POST', '/scim/v2/Users', body), 400, scimType);
    const user = (
      await s.scim(token, 'POST', '/scim/v2/Users', { ...okta.createUser, userName: 'patched' })
    ).json<{ id: string }>();
    const patches: Array<[unknown, string]> = [
      [{ schemas: ['urn:evil'], Operations: [{ op: 'replace', value: { active: false } }] }, 'invalidSyntax'],
      [
        {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'merge', path: 'active', value: false }],
        },
        'invalidSyntax',
      ],
      [
        {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', path: 'password', value: 'x' }],
        },
        '',
      ],
      [
        {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', path: 'isAdmin', value: true }],
        },
        'invalidPath',
      ],
      [
        {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', path: 'userName', value: 'root' }],
        },
        'mutability',
      ],
      [
        { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'remove' }] },
        'noTarget',
      ],
    ];
    for (const [body, scimType] of patches) {
      const r = await s.scim(token, 'PATCH', `/scim/v2/Users/${user.id}`, body);
      // A password is accepted and dropped: provisioned users sign in through the IdP.
      if (scimType === '') expect(r.statusCode).toBe(200);
      else expectScimError(r, 400, scimType);
    }
    expect(await s.rig.t.store.users.get(user.id)).toMatchObject({
      username: 'patched',
      passwordHash: null,
      disabled: false,
    });
    // Out-of-range request parts are SCIM errors too, never Cove's own error shape.
    expectScimError(await s.scim(token, 'GET', '/scim/v2/Users?count=abc'), 400, 'invalidValue');
    expectScimError(
      await s.scim(token, 'GET', `/scim/v2/Users?startIndex=${'9'.repeat(20)}`),
      400,
      'invalidValue',
    );
  });
});

describe('SC SCIM scope', () => {
  it('SC10 a client sees and changes only its provider’s users and its groups: not local users, not the admins group', async () => {
    const local = await s.rig.user('local-admin', { admin: true });
    const entraToken = (await s.token('entra', 'Entra')).secret;
    const entraUser = (
      await s.scim(entraToken, 'POST', '/scim/v2/Users', { ...okta.createUser, userName: 'entra-only' })
    ).json<{ id: string }>();
    const admins = await s.rig.t.store.groups.getByName('admins');
    for (const [method, url, body] of [
      ['GET', `/scim/v2/Users/${local.id}`, undefined],
      ['PATCH', `/scim/v2/Users/${local.id}`, okta.deactivateUser],
      ['DELETE', `/scim/v2/Users/${local.id}`, undefined],
      ['PATCH', `/scim/v2/Users/${entraUser.id}`, okta.deactivateUser],
      ['GET', `/scim/v2/Groups/${admins?.id ?? ''}`, undefined],
      ['PATCH', `/scim/v2/Groups/${admins?.id ?? ''}`, okta.addMembers(local.id)],
      ['DELETE', `/scim/v2/Groups/${admins?.id ?? ''}`, undefined],
    ] as const)
      expectScimError(await s.scim(token, method, url, body), 404);
    expectScimError(
      await s.scim(token, 'POST', '/scim/v2/Groups', { ...okta.createGroup, displayName: 'admins' }),
      409,
      'uniqueness',
    );
    // Its own group cannot take in a user it does not manage.
    const group = (
      await s.scim(token, 'POST', '/scim/v2/Groups', { ...okta.createGroup, displayName: 'Scoped' })
    ).json<{ id: string }>();
    expectScimError(
      await s.scim(token, 'PATCH', `/scim/v2/Groups/${group.id}`, okta.addMembers(local.id)),
      400,
      'invalidValue',
    );
    expect(await s.rig.t.store.groups.members(group.id)).toEqual([]);
    expect(await s.rig.t.store.users.get(local.id)).toMatchObject({ disabled: false, source: 'local' });
    expect((await s.rig.t.store.users.get(entraUser.id))?.disabled).toBe(false);
    const listed = (await s.scim(token, 'GET', '/scim/v2/Users?count=100')).json<{
      Resources: { id: string }[];
    }>();
    expect(listed.Resources.map((r) => r.id)).not.toContain(local.id);
    expect(listed.Resources.map((r) => r.id)).not.toContain(entraUser.id);
  });

  it('SC11 no SCIM token reaches the logs, the audit log or an error body', async () => {
    const { secret } = await s.token('okta', 'leak check');
    await s.scim(secret, 'GET', '/scim/v2/Users?filter=bad');
    await s.scim(secret, 'POST', '/scim/v2/Users', 'not json');
    await s.scim(`${secret}x`, 'GET', '/scim/v2/Users');
    const audit = JSON.stringify(await s.rig.t.store.audit.list({ limit: 500 }));
    const logs = s.rig.t.logs.join('');
    for (const value of [secret, token, secret.slice(10)]) {
      expect(logs).not.toContain(value);
      expect(audit).not.toContain(value);
    }
    expect(logs).toContain('SCIM request refused');
    // Should one ever be quoted in an error that gets logged, the scrubber takes it out.
    expect(scrubSecrets(`upstream said: Authorization: Bearer ${secret}.`)).toBe(
      'upstream said: Authorization: Bearer cove_scim_[redacted].',
    );
  });
});
