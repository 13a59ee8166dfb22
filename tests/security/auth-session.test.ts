/**
 * SECURITY-TESTS A04 (session fixation), A05 (logout really ends the session), A08 (cookie
 * attributes), H07 (CSRF on the auth routes).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthApp, testPassword, type AuthTestApp } from '../integration/server/auth/auth-test-app.js';

const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

describe('A04 session fixation', () => {
  let t: AuthTestApp;
  beforeAll(async () => {
    t = await startAuthApp();
    await t.createUser('amy');
    const mfaUser = await t.createUser('bob');
    await t.store.users.update(mfaUser.id, { totpSecret: secret });
  });
  afterAll(() => t.close());

  it('A04 a planted cookie value is replaced at sign-in and never becomes signed in', async () => {
    const planted = randomBytes(32).toString('base64url');
    const res = await t.login('amy', testPassword, planted);
    const issued = t.cookieOf(res);
    expect(issued).toBeDefined();
    expect(issued).not.toBe(planted);
    expect((await t.get('/api/me', planted)).statusCode).toBe(401);
    expect((await t.get('/api/me', issued)).statusCode).toBe(200);
  });

  it('A04 a planted live session (the attacker’s own) is destroyed by the victim’s sign-in', async () => {
    const attackers = await t.signIn('amy');
    const res = await t.login('amy', testPassword, attackers);
    expect(t.cookieOf(res)).not.toBe(attackers);
    expect((await t.get('/api/me', attackers)).statusCode).toBe(401);
  });

  it('A04 the cookie value changes at the password step and again at the TOTP step', async () => {
    const planted = randomBytes(32).toString('base64url');
    const login = await t.login('bob', testPassword, planted);
    const pending = t.cookieOf(login) as string;
    expect(pending).not.toBe(planted);
    const mfa = await t.post('/api/auth/mfa', { code: t.codeNow(secret) }, pending);
    const full = t.cookieOf(mfa) as string;
    expect(new Set([planted, pending, full]).size).toBe(3);
    for (const old of [planted, pending]) expect((await t.get('/api/me', old)).statusCode).toBe(401);
    expect((await t.get('/api/me', full)).statusCode).toBe(200);
  });
});

describe('A05 logout', () => {
  let t: AuthTestApp;
  beforeAll(async () => {
    t = await startAuthApp();
    await t.createUser('carl');
  });
  afterAll(() => t.close());

  it('A05 ends the session for every tab; the replayed cookie is 401; a later rotation cannot revive it', async () => {
    const cookie = await t.signIn('carl');
    const hashes: string[] = [];
    const sub = t.app.sessions.onRevoked((ids) => hashes.push(...ids));
    expect((await t.post('/api/auth/logout', undefined, cookie)).statusCode).toBe(204);
    sub.dispose();
    expect(hashes).toHaveLength(1);
    expect(await t.store.sessions.get(hashes[0] as string)).toBeUndefined();
    // Requests that would rotate the session (a slow one started before logout) find nothing.
    expect((await t.post('/api/auth/mfa/enroll', undefined, cookie)).statusCode).toBe(401);
    const change = await t.post(
      '/api/auth/password',
      { currentPassword: testPassword, newPassword: 'another long password' },
      cookie,
    );
    expect(change.statusCode).toBe(401);
    expect(t.cookieOf(change)).toBeUndefined();
    expect((await t.get('/api/me', cookie)).statusCode).toBe(401);
  });

  it('A05 a password change in flight when logout lands does not hand out a new session', async () => {
    const cookie = await t.signIn('carl');
    // Hold the change between its password check and its session work until logout is done.
    const users = t.store.users;
    const update = users.update;
    let reached!: () => void;
    let release!: () => void;
    const atUpdate = new Promise<void>((resolve) => (reached = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    users.update = async (...args) => {
      reached();
      await gate;
      return update(...args);
    };
    const change = t.post(
      '/api/auth/password',
      { currentPassword: testPassword, newPassword: 'racing new password' },
      cookie,
    );
    await atUpdate;
    users.update = update;
    expect((await t.post('/api/auth/logout', undefined, cookie)).statusCode).toBe(204);
    release();
    const res = await change;
    expect(res.statusCode).toBe(401);
    expect(t.cookieOf(res)).toBeUndefined();
    const carl = await t.store.users.getByUsername('carl');
    expect(await t.store.sessions.deleteForUser(carl?.id as string)).toEqual([]);
  });
});

describe('A08 cookie attributes', () => {
  it('A08 over http: cove_session, HttpOnly, SameSite=Lax, Path=/, no Domain', async () => {
    const t = await startAuthApp();
    try {
      await t.createUser('dana');
      const res = await t.login('dana');
      const header = String(res.headers['set-cookie']);
      expect(header).toMatch(/^cove_session=[A-Za-z0-9_-]{43};/);
      expect(header).toContain('HttpOnly');
      expect(header).toContain('SameSite=Lax');
      expect(header).toContain('Path=/');
      expect(header).not.toMatch(/Domain=/i);
      expect(header).toMatch(/Max-Age=28800/);
    } finally {
      await t.close();
    }
  });

  it('A08 over https: __Host- prefix and Secure', async () => {
    const t = await startAuthApp({ publicUrl: 'https://cove.example.com' });
    try {
      await t.createUser('dana');
      const res = await t.login('dana');
      expect(res.statusCode).toBe(200);
      const header = String(res.headers['set-cookie']);
      expect(header).toMatch(/^__Host-cove_session=/);
      expect(header).toContain('Secure');
      expect(header).toContain('HttpOnly');
      expect(header).toContain('SameSite=Lax');
      expect(header).toContain('Path=/');
      expect(header).not.toMatch(/Domain=/i);
      // A cookie without the prefix (tossed from a sibling host) is ignored.
      const token = t.cookieOf(res) as string;
      const tossed = await t.app.inject({
        method: 'GET',
        url: '/api/me',
        headers: { cookie: `cove_session=${token}` },
      });
      expect(tossed.statusCode).toBe(401);
      expect((await t.get('/api/me', token)).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('A08 a pending-MFA cookie lives only as long as the pending step', async () => {
    const t = await startAuthApp();
    try {
      const user = await t.createUser('eve');
      await t.store.users.update(user.id, { totpSecret: secret });
      const header = String((await t.login('eve')).headers['set-cookie']);
      expect(header).toMatch(new RegExp(`Max-Age=${t.config.auth.mfaPendingTtlS}`));
    } finally {
      await t.close();
    }
  });
});

describe('H07 CSRF on the auth routes', () => {
  let t: AuthTestApp;
  beforeAll(async () => {
    t = await startAuthApp();
    await t.createUser('fay');
  });
  afterAll(() => t.close());

  const body = JSON.stringify({ username: 'fay', password: testPassword });
  const cases: Array<[string, Record<string, string>, number]> = [
    ['foreign Origin', { origin: 'https://evil.example', 'content-type': 'application/json' }, 403],
    ['Origin: null', { origin: 'null', 'content-type': 'application/json' }, 403],
    [
      'no Origin, cross-site fetch',
      { 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' },
      403,
    ],
    [
      'no Origin, foreign Referer',
      { referer: 'https://evil.example/page', 'content-type': 'application/json' },
      403,
    ],
    ['text/plain body', { 'content-type': 'text/plain' }, 415],
    ['form body', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
  ];

  for (const [name, headers, status] of cases) {
    it(`H07 login refused: ${name}`, async () => {
      const withOrigin =
        'origin' in headers || 'referer' in headers || status === 403
          ? headers
          : { origin: t.origin, ...headers };
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        headers: withOrigin,
        payload: body,
      });
      expect(res.statusCode).toBe(status);
      expect(t.cookieOf(res)).toBeUndefined();
    });

    it(`H07 logout refused, session kept: ${name}`, async () => {
      const cookie = await t.signIn('fay');
      const withOrigin =
        'origin' in headers || 'referer' in headers || status === 403
          ? headers
          : { origin: t.origin, ...headers };
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/logout',
        headers: { ...withOrigin, cookie: `${t.cookieName}=${cookie}` },
        payload: '{}',
      });
      expect(res.statusCode).toBe(status);
      expect((await t.get('/api/me', cookie)).statusCode).toBe(200);
    });
  }

  it('H07 password change from a foreign origin is refused and the password stays', async () => {
    const cookie = await t.signIn('fay');
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password',
      headers: {
        origin: 'https://evil.example',
        'content-type': 'application/json',
        cookie: `${t.cookieName}=${cookie}`,
      },
      payload: JSON.stringify({ currentPassword: testPassword, newPassword: 'attacker chosen pw' }),
    });
    expect(res.statusCode).toBe(403);
    expect((await t.login('fay')).statusCode).toBe(200);
  });
});
