/**
 * SECURITY-TESTS A02 (TOTP replay) and A03 (what a pending-MFA session can do, brute force).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserRecord } from '../../server/store/store.js';
import { startAuthApp, type AuthTestApp } from '../integration/server/auth/auth-test-app.js';

const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

describe('A02 TOTP codes work once', () => {
  let t: AuthTestApp;
  let user: UserRecord;
  beforeAll(async () => {
    t = await startAuthApp();
    user = await t.createUser('mallory-target');
    await t.store.users.update(user.id, { totpSecret: secret });
  });
  afterAll(() => t.close());

  it('A02 a code that finished one sign-in is refused in a second sign-in within its window', async () => {
    const code = t.codeNow(secret);
    const first = await t.post('/api/auth/mfa', { code }, t.cookieOf(await t.login('mallory-target')));
    expect(first.statusCode).toBe(200);
    t.clock.advance(20_000); // same or next step: still inside the ±1 window
    const second = await t.post('/api/auth/mfa', { code }, t.cookieOf(await t.login('mallory-target')));
    expect(second.statusCode).toBe(401);
    expect(second.json()).toMatchObject({ code: 'COVE_ERR_AUTH_MFA_REPLAYED' });
    expect(t.cookieOf(second)).toBeUndefined();
  });

  it('A02 two concurrent sign-ins with one code: exactly one succeeds, the other is told the code was used', async () => {
    t.clock.advance(90_000);
    const a = t.cookieOf(await t.login('mallory-target'));
    const b = t.cookieOf(await t.login('mallory-target'));
    const code = t.codeNow(secret);
    const results = await Promise.all([
      t.post('/api/auth/mfa', { code }, a),
      t.post('/api/auth/mfa', { code }, b),
    ]);
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([200, 401]);
    const loser = results.find((r) => r.statusCode === 401);
    expect(loser?.json()).toMatchObject({ code: 'COVE_ERR_AUTH_MFA_REPLAYED' });
  });

  it('A02 an older code is refused once a newer one was used', async () => {
    t.clock.advance(90_000);
    const older = t.codeNow(secret);
    t.clock.advance(30_000);
    const newer = t.codeNow(secret);
    expect(
      (await t.post('/api/auth/mfa', { code: newer }, t.cookieOf(await t.login('mallory-target'))))
        .statusCode,
    ).toBe(200);
    const res = await t.post('/api/auth/mfa', { code: older }, t.cookieOf(await t.login('mallory-target')));
    expect(res.json()).toMatchObject({ code: 'COVE_ERR_AUTH_MFA_REPLAYED' });
  });
});

describe('A03 a pending-MFA session', () => {
  let t: AuthTestApp;
  let pending: string;
  beforeAll(async () => {
    t = await startAuthApp();
    const user = await t.createUser('peggy');
    await t.store.users.update(user.id, { totpSecret: secret });
    const login = await t.login('peggy');
    expect(login.json()).toEqual({ mfaRequired: true });
    pending = t.cookieOf(login) as string;
  });
  afterAll(() => t.close());

  it('A03 gets 401 on every route but the code check and logout', async () => {
    const calls: Array<[string, string, unknown]> = [
      ['GET', '/api/me', undefined],
      ['GET', '/api/test/guarded', undefined],
      ['GET', '/api/test/admin', undefined],
      ['GET', '/api/portal', undefined],
      ['GET', '/api/admin/users', undefined],
      ['POST', '/api/auth/password', { currentPassword: 'whatever12', newPassword: 'whatever1234' }],
      ['POST', '/api/auth/mfa/enroll', undefined],
      ['POST', '/api/auth/mfa/enroll/verify', { code: '123456' }],
      ['DELETE', '/api/auth/mfa', { code: t.codeNow(secret) }],
    ];
    for (const [method, url, body] of calls) {
      const res = await t.app.inject({
        method: method as 'GET',
        url,
        headers: {
          origin: t.origin,
          cookie: `${t.cookieName}=${pending}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
      expect((res.json() as { code: string }).code, `${method} ${url}`).toMatch(
        /^COVE_ERR_AUTH_(MFA_PENDING|REQUIRED)$/,
      );
    }
    const user = await t.store.users.getByUsername('peggy');
    expect(user?.totpSecret).toBe(secret);
    expect(user?.totpPendingSecret).toBeNull();
  });

  it('A03 after 5 wrong codes is gone, and the right code no longer helps', async () => {
    const bad = t.codeNow(secret) === '000000' ? '999999' : '000000';
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.post('/api/auth/mfa', { code: bad }, pending);
      expect(res.statusCode).toBe(401);
      codes.push((res.json() as { code: string }).code);
    }
    expect(codes).toEqual([...Array(4).fill('COVE_ERR_AUTH_MFA_INVALID'), 'COVE_ERR_AUTH_MFA_LOCKED']);
    const late = await t.post('/api/auth/mfa', { code: t.codeNow(secret) }, pending);
    expect(late.statusCode).toBe(401);
    expect(late.json()).toMatchObject({ code: 'COVE_ERR_AUTH_REQUIRED' });
    // A new password step starts a new attempt.
    const again = await t.login('peggy');
    const ok = await t.post('/api/auth/mfa', { code: t.codeNow(secret) }, t.cookieOf(again));
    expect(ok.statusCode).toBe(200);
  });

  it('A03 malformed codes count as wrong ones and never crash', async () => {
    t.clock.advance(60_000);
    const cookie = t.cookieOf(await t.login('peggy'));
    for (const code of ['12345', '1234567', 'abcdef', ' ', '１２３４５６']) {
      const res = await t.post('/api/auth/mfa', { code }, cookie);
      expect(res.statusCode, code).toBe(401);
    }
  });

  it('A03 expires after the pending lifetime', async () => {
    t.clock.advance(60_000);
    const cookie = t.cookieOf(await t.login('peggy'));
    t.clock.advance(t.config.auth.mfaPendingTtlS * 1000 + 1);
    const res = await t.post('/api/auth/mfa', { code: t.codeNow(secret) }, cookie);
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'COVE_ERR_AUTH_REQUIRED' });
  });
});
