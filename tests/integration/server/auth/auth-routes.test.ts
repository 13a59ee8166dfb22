import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errors } from '../../../../server/errors.js';
import type { UserRecord } from '../../../../server/store/store.js';
import { startAuthApp, testPassword, type AuthTestApp } from './auth-test-app.js';

describe('sign-in with a password', () => {
  let t: AuthTestApp;
  let alice: UserRecord;
  beforeAll(async () => {
    t = await startAuthApp();
    alice = await t.createUser('alice');
    await t.createUser('dora', { disabled: true });
  });
  afterAll(() => t.close());

  it('signs in, sets a session cookie and /api/me describes the user', async () => {
    const res = await t.login('alice');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      mfaRequired: false,
      passwordChangeRequired: false,
      mfaEnrollmentRequired: false,
    });
    const cookie = t.cookieOf(res);
    expect(cookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const me = await t.get('/api/me', cookie);
    expect(me.statusCode).toBe(200);
    expect(me.json()).toEqual({
      id: alice.id,
      username: 'alice',
      isAdmin: false,
      mfaEnrolled: false,
      mfaRequired: false,
      passwordChangeRequired: false,
    });
  });

  it('normalizes the user name (case, spaces, NFKC)', async () => {
    expect((await t.login('  ALICE ')).statusCode).toBe(200);
    expect((await t.login('ａｌｉｃｅ')).statusCode).toBe(200);
  });

  it('answers wrong password, unknown user and disabled user with the identical 401 body', async () => {
    const wrong = await t.login('alice', 'not the password at all');
    const unknown = await t.login('nobody-here', testPassword);
    const disabled = await t.login('dora', testPassword);
    for (const res of [wrong, unknown, disabled]) {
      expect(res.statusCode).toBe(401);
      expect(t.cookieOf(res)).toBeUndefined();
    }
    expect(wrong.body).toBe(unknown.body);
    expect(disabled.body).toBe(unknown.body);
    expect(wrong.json()).toEqual(errors.badCredentials().toJSON());
  });

  it('refuses a user who has no password yet (invited, not accepted) like any other failure', async () => {
    await t.createUser('invitee', { password: null });
    const res = await t.login('invitee', testPassword);
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual(errors.badCredentials().toJSON());
  });

  it('rejects a malformed body with 400 naming the field', async () => {
    const res = await t.post('/api/auth/login', { username: 'alice' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'COVE_ERR_REQUEST_INVALID', field: 'password' });
  });

  it('/api/me without a session is 401', async () => {
    const res = await t.get('/api/me');
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'COVE_ERR_AUTH_REQUIRED' });
  });

  it('reports admins as admins', async () => {
    const admins =
      (await t.store.groups.getByName('admins')) ?? (await t.store.groups.create({ name: 'admins' }));
    const root = await t.createUser('root-user');
    await t.store.groups.addMember(admins.id, root.id);
    const cookie = await t.signIn('root-user');
    expect((await t.get('/api/me', cookie)).json()).toMatchObject({ isAdmin: true });
    expect((await t.get('/api/test/admin', cookie)).statusCode).toBe(200);
    expect((await t.get('/api/test/admin', await t.signIn('alice'))).statusCode).toBe(403);
  });

  it('records sign-in successes and failures in the audit log, never the password', async () => {
    const entries = await t.store.audit.list({ limit: 1000 });
    const actions = entries.map((e) => e.action);
    expect(actions).toContain('auth.login.succeeded');
    expect(actions).toContain('auth.login.failed');
    const failed = entries.filter((e) => e.action === 'auth.login.failed').map((e) => e.details.reason);
    expect(failed).toEqual(expect.arrayContaining(['wrong_password', 'unknown_user', 'disabled']));
    const everything = JSON.stringify(entries);
    expect(everything).not.toContain(testPassword);
    expect(everything).not.toContain('not the password at all');
  });

  it('updates lastLoginAt', async () => {
    await t.login('alice');
    expect((await t.store.users.get(alice.id))?.lastLoginAt).toBe(t.clock.now);
  });
});

describe('logout', () => {
  let t: AuthTestApp;
  beforeAll(async () => {
    t = await startAuthApp();
    await t.createUser('alice');
  });
  afterAll(() => t.close());

  it('ends the session server-side, clears the cookie and tells the revocation listeners', async () => {
    const cookie = await t.signIn('alice');
    const revoked: string[] = [];
    const listener = t.app.sessions.onRevoked((ids) => revoked.push(...ids));
    const res = await t.post('/api/auth/logout', undefined, cookie);
    listener.dispose();
    expect(res.statusCode).toBe(204);
    const cleared = res.cookies.find((c) => c.name === t.cookieName);
    expect(cleared?.value).toBe('');
    expect(revoked).toHaveLength(1);
    // Replaying the old cookie after logout gets nothing.
    expect((await t.get('/api/me', cookie)).statusCode).toBe(401);
    const actions = (await t.store.audit.list()).map((e) => e.action);
    expect(actions).toContain('auth.logout');
  });

  it('answers 204 without a session too', async () => {
    expect((await t.post('/api/auth/logout')).statusCode).toBe(204);
  });

  it('GET /api/auth/logout does not log out', async () => {
    const cookie = await t.signIn('alice');
    const res = await t.get('/api/auth/logout', cookie);
    expect([404, 405]).toContain(res.statusCode);
    expect((await t.get('/api/me', cookie)).statusCode).toBe(200);
  });
});

describe('MFA enrollment and sign-in with TOTP', () => {
  let t: AuthTestApp;
  let user: UserRecord;
  beforeAll(async () => {
    t = await startAuthApp();
    user = await t.createUser('erin');
  });
  afterAll(() => t.close());

  it('enrolls, then requires the code at sign-in and refuses the enrollment code', async () => {
    const fullCookie = await t.signIn('erin');
    const enroll = await t.post('/api/auth/mfa/enroll', undefined, fullCookie);
    expect(enroll.statusCode).toBe(200);
    const enrollment = enroll.json() as { otpauthUrl: string; qrSvgDataUrl: string; secret: string };
    expect(enrollment.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(enrollment.otpauthUrl).toContain('issuer=Cove');
    expect(enrollment.otpauthUrl).toContain('erin');
    expect(enrollment.qrSvgDataUrl).toMatch(/^data:image\/svg\+xml;base64,/);
    // Pending only: sign-in still needs no code.
    expect((await t.store.users.get(user.id))?.totpSecret).toBeNull();

    expect((await t.post('/api/auth/mfa/enroll/verify', { code: '000000' }, fullCookie)).statusCode).toBe(
      401,
    );
    const enrollmentCode = t.codeNow(enrollment.secret);
    const verify = await t.post('/api/auth/mfa/enroll/verify', { code: enrollmentCode }, fullCookie);
    expect(verify.statusCode).toBe(200);
    const rotated = t.cookieOf(verify);
    expect(rotated).toBeDefined();
    expect(rotated).not.toBe(fullCookie);
    expect((await t.get('/api/me', fullCookie)).statusCode).toBe(401);
    expect((await t.get('/api/me', rotated)).json()).toMatchObject({ mfaEnrolled: true });
    expect((await t.post('/api/auth/mfa/enroll', undefined, rotated)).statusCode).toBe(409);

    const login = await t.login('erin');
    expect(login.statusCode).toBe(200);
    expect(login.json()).toEqual({ mfaRequired: true });
    const pending = t.cookieOf(login);

    // The code that proved the enrollment does not also finish this sign-in.
    const reused = await t.post('/api/auth/mfa', { code: enrollmentCode }, pending);
    expect(reused.statusCode).toBe(401);
    expect(reused.json()).toMatchObject({ code: 'COVE_ERR_AUTH_MFA_REPLAYED' });

    t.clock.advance(30_000);
    const ok = await t.post('/api/auth/mfa', { code: t.codeNow(enrollment.secret) }, pending);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({});
    const full = t.cookieOf(ok);
    expect(full).not.toBe(pending);
    expect((await t.get('/api/me', pending)).statusCode).toBe(401);
    expect((await t.get('/api/me', full)).statusCode).toBe(200);
    const actions = (await t.store.audit.list({ limit: 1000 })).map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining(['auth.mfa.enrolled', 'auth.mfa.succeeded', 'auth.mfa.replayed']),
    );
  });

  it('accepts a code from the step before and after, not two away', async () => {
    const secret = (await t.store.users.get(user.id))?.totpSecret as string;
    t.clock.advance(60_000);
    for (const [offset, status] of [
      [-30_000, 200],
      [30_000, 200],
      [-60_000, 401],
      [90_000, 401],
    ] as const) {
      t.clock.advance(90_000);
      const pending = t.cookieOf(await t.login('erin'));
      const { totpCode } = await import('../../../../server/auth/totp.js');
      const res = await t.post('/api/auth/mfa', { code: totpCode(secret, t.clock.now + offset) }, pending);
      expect(res.statusCode, `offset ${offset}`).toBe(status);
    }
  });

  it('disables MFA only with a fresh code, and then sign-in needs none', async () => {
    t.clock.advance(90_000);
    const cookie = await t.signIn('erin');
    const secret = (await t.store.users.get(user.id))?.totpSecret as string;
    const wrong = await t.app.inject({
      method: 'DELETE',
      url: '/api/auth/mfa',
      headers: { origin: t.origin, 'content-type': 'application/json', cookie: `${t.cookieName}=${cookie}` },
      payload: JSON.stringify({ code: '123456' === t.codeNow(secret) ? '654321' : '123456' }),
    });
    expect(wrong.statusCode).toBe(401);
    // The code signIn just used is spent.
    const replay = await t.app.inject({
      method: 'DELETE',
      url: '/api/auth/mfa',
      headers: { origin: t.origin, 'content-type': 'application/json', cookie: `${t.cookieName}=${cookie}` },
      payload: JSON.stringify({ code: t.codeNow(secret) }),
    });
    expect(replay.json()).toMatchObject({ code: 'COVE_ERR_AUTH_MFA_REPLAYED' });
    t.clock.advance(30_000);
    const ok = await t.app.inject({
      method: 'DELETE',
      url: '/api/auth/mfa',
      headers: { origin: t.origin, 'content-type': 'application/json', cookie: `${t.cookieName}=${cookie}` },
      payload: JSON.stringify({ code: t.codeNow(secret) }),
    });
    expect(ok.statusCode).toBe(200);
    expect((await t.login('erin')).json()).toMatchObject({ mfaRequired: false });
    expect((await t.store.audit.list()).map((e) => e.action)).toContain('auth.mfa.disabled');
  });
});

describe('password change and the must-change gate', () => {
  let t: AuthTestApp;
  beforeAll(async () => {
    t = await startAuthApp();
    await t.createUser('frank', { mustChangePassword: true });
  });
  afterAll(() => t.close());

  it('lets a must-change session reach only /api/me and /api/auth/*', async () => {
    const login = await t.login('frank');
    expect(login.json()).toEqual({
      mfaRequired: false,
      passwordChangeRequired: true,
      mfaEnrollmentRequired: false,
    });
    const cookie = t.cookieOf(login);
    expect((await t.get('/api/me', cookie)).json()).toMatchObject({ passwordChangeRequired: true });
    for (const url of ['/api/test/guarded', '/api/test/unguarded', '/api/test/admin', '/api/portal']) {
      const res = await t.get(url, cookie);
      expect(res.statusCode, url).toBe(403);
      expect(res.json(), url).toMatchObject({ code: 'COVE_ERR_AUTH_PASSWORD_CHANGE_REQUIRED' });
    }
    expect((await t.post('/api/auth/mfa/enroll', undefined, cookie)).statusCode).toBe(200);
  });

  it('refuses a wrong current password and a weak new one, and keeps the old password', async () => {
    const cookie = await t.signIn('frank');
    const wrong = await t.post(
      '/api/auth/password',
      { currentPassword: 'nope-nope-nope', newPassword: 'a new long password' },
      cookie,
    );
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json()).toMatchObject({ code: 'COVE_ERR_AUTH_CURRENT_PASSWORD_INVALID' });
    for (const newPassword of ['short', 'FRANK', 'x'.repeat(257), testPassword]) {
      const res = await t.post('/api/auth/password', { currentPassword: testPassword, newPassword }, cookie);
      expect(res.statusCode, newPassword).toBe(400);
      expect(res.json()).toMatchObject({ code: 'COVE_ERR_AUTH_PASSWORD_POLICY' });
    }
    expect((await t.login('frank')).statusCode).toBe(200);
  });

  it('changes the password, rotates this session, ends the others and lifts the gate', async () => {
    const other = await t.signIn('frank');
    const cookie = await t.signIn('frank');
    const res = await t.post(
      '/api/auth/password',
      { currentPassword: testPassword, newPassword: 'brand new password 42' },
      cookie,
    );
    expect(res.statusCode).toBe(200);
    const next = t.cookieOf(res);
    expect(next).toBeDefined();
    expect(next).not.toBe(cookie);
    expect((await t.get('/api/me', cookie)).statusCode).toBe(401);
    expect((await t.get('/api/me', other)).statusCode).toBe(401);
    expect((await t.get('/api/test/guarded', next)).statusCode).toBe(200);
    expect((await t.login('frank')).statusCode).toBe(401);
    expect((await t.login('frank', 'brand new password 42')).json()).toMatchObject({
      passwordChangeRequired: false,
    });
    expect((await t.store.audit.list()).map((e) => e.action)).toContain('auth.password.changed');
  });
});

describe('MFA required by configuration', () => {
  let t: AuthTestApp;
  beforeAll(async () => {
    t = await startAuthApp({ auth: { requireMfa: true } });
    await t.createUser('gina');
  });
  afterAll(() => t.close());

  it('gates until enrolled, then opens everything and refuses to disable MFA', async () => {
    const login = await t.login('gina');
    expect(login.json()).toEqual({
      mfaRequired: false,
      passwordChangeRequired: false,
      mfaEnrollmentRequired: true,
    });
    const cookie = t.cookieOf(login);
    const gated = await t.get('/api/test/guarded', cookie);
    expect(gated.statusCode).toBe(403);
    expect(gated.json()).toMatchObject({ code: 'COVE_ERR_AUTH_MFA_ENROLLMENT_REQUIRED' });
    expect((await t.get('/api/me', cookie)).json()).toMatchObject({ mfaRequired: true, mfaEnrolled: false });

    const { secret } = (await t.post('/api/auth/mfa/enroll', undefined, cookie)).json() as { secret: string };
    const verify = await t.post('/api/auth/mfa/enroll/verify', { code: t.codeNow(secret) }, cookie);
    expect(verify.statusCode).toBe(200);
    const full = t.cookieOf(verify);
    expect((await t.get('/api/test/guarded', full)).statusCode).toBe(200);

    t.clock.advance(30_000);
    const disable = await t.app.inject({
      method: 'DELETE',
      url: '/api/auth/mfa',
      headers: { origin: t.origin, 'content-type': 'application/json', cookie: `${t.cookieName}=${full}` },
      payload: JSON.stringify({ code: t.codeNow(secret) }),
    });
    expect(disable.statusCode).toBe(403);
    expect(disable.json()).toMatchObject({ code: 'COVE_ERR_AUTH_MFA_REQUIRED' });
  });

  it('also gates a user whose own flag requires MFA', async () => {
    const t2 = await startAuthApp();
    try {
      await t2.createUser('hank', { mfaRequired: true });
      const login = await t2.login('hank');
      expect(login.json()).toMatchObject({ mfaEnrollmentRequired: true });
      expect((await t2.get('/api/test/guarded', t2.cookieOf(login))).statusCode).toBe(403);
    } finally {
      await t2.close();
    }
  });
});

describe('audit of MFA', () => {
  let t: AuthTestApp;
  beforeAll(async () => {
    t = await startAuthApp();
  });
  afterAll(() => t.close());

  it('records failed and locked MFA attempts without the codes', async () => {
    const user = await t.createUser('ivan');
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    await t.store.users.update(user.id, { totpSecret: secret });
    const pending = t.cookieOf(await t.login('ivan'));
    const bad = t.codeNow(secret) === '111111' ? '222222' : '111111';
    for (let i = 0; i < 5; i++) await t.post('/api/auth/mfa', { code: bad }, pending);
    const entries = await t.store.audit.list();
    const actions = entries.map((e) => e.action);
    expect(actions.filter((a) => a === 'auth.mfa.failed')).toHaveLength(4);
    expect(actions).toContain('auth.mfa.locked');
    expect(JSON.stringify(entries)).not.toContain(bad);
    expect(JSON.stringify(entries)).not.toContain(secret);
  });
});
