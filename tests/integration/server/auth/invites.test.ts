import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvite } from '../../../../server/auth/invites.js';
import { hashToken } from '../../../../server/auth/session-service.js';
import { startAuthApp, type AuthTestApp } from './auth-test-app.js';

const newPassword = 'my very own password';

describe('invites', () => {
  let t: AuthTestApp;
  beforeAll(async () => {
    t = await startAuthApp();
  });
  afterAll(() => t.close());

  const invalidBody = () => ({
    valid: false,
    code: 'COVE_ERR_AUTH_INVITE_INVALID',
    message: expect.stringContaining('Ask your administrator') as unknown as string,
  });

  it('creates a link to the login page and stores only the token hash', async () => {
    const user = await t.createUser('ines', { password: null });
    const { token, url } = await createInvite(t.app, user.id);
    expect(url).toBe(`${t.origin}/login?invite=${token}`);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await t.store.invites.get(token)).toBeUndefined();
    const stored = await t.store.invites.get(hashToken(token));
    expect(stored?.userId).toBe(user.id);
    expect(stored?.expiresAt).toBe(t.clock.now + t.config.auth.inviteTtlS * 1000);
  });

  it('is accepted once: sets the password, signs in, and cannot be used again', async () => {
    const user = await t.createUser('jack', { password: null, mfaRequired: true });
    const { token } = await createInvite(t.app, user.id);

    const info = await t.get(`/api/auth/invite/${token}`);
    expect(info.statusCode).toBe(200);
    expect(info.json()).toEqual({ username: 'jack', valid: true, mfaRequired: true });

    const accept = await t.post('/api/auth/invite/accept', { token, password: newPassword });
    expect(accept.statusCode).toBe(200);
    expect(accept.json()).toEqual({
      mfaRequired: false,
      passwordChangeRequired: false,
      mfaEnrollmentRequired: true,
    });
    const cookie = t.cookieOf(accept);
    expect((await t.get('/api/me', cookie)).json()).toMatchObject({ username: 'jack', mfaRequired: true });
    // Enrollment gating applies right away.
    expect((await t.get('/api/test/guarded', cookie)).json()).toMatchObject({
      code: 'COVE_ERR_AUTH_MFA_ENROLLMENT_REQUIRED',
    });

    const again = await t.post('/api/auth/invite/accept', { token, password: 'attacker password 1' });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toMatchObject({ code: 'COVE_ERR_AUTH_INVITE_INVALID' });
    expect(t.cookieOf(again)).toBeUndefined();
    expect((await t.login('jack', newPassword)).statusCode).toBe(200);
    expect((await t.login('jack', 'attacker password 1')).statusCode).toBe(401);

    const used = await t.get(`/api/auth/invite/${token}`);
    expect(used.statusCode).toBe(404);
    expect(used.json()).toEqual(invalidBody());
    expect((await t.store.audit.list()).map((e) => e.action)).toContain('auth.invite.accepted');
  });

  it('answers unknown, used and expired invites with one identical body', async () => {
    const user = await t.createUser('kate', { password: null });
    const { token: expiring } = await createInvite(t.app, user.id);
    const other = await t.createUser('liam', { password: null });
    const { token: used } = await createInvite(t.app, other.id);
    expect((await t.post('/api/auth/invite/accept', { token: used, password: newPassword })).statusCode).toBe(
      200,
    );

    t.clock.advance(t.config.auth.inviteTtlS * 1000 + 1);
    const bodies = await Promise.all(
      [expiring, used, 'x'.repeat(43), 'nonsense'].map(async (token) => {
        const res = await t.get(`/api/auth/invite/${token}`);
        expect(res.statusCode).toBe(404);
        return res.body;
      }),
    );
    expect(new Set(bodies).size).toBe(1);
    const expired = await t.post('/api/auth/invite/accept', { token: expiring, password: newPassword });
    expect(expired.statusCode).toBe(404);
    expect((await t.store.users.get(user.id))?.passwordHash).toBeNull();
  });

  it('does not burn the invite on a weak password', async () => {
    const user = await t.createUser('mona', { password: null });
    const { token } = await createInvite(t.app, user.id);
    for (const password of ['short', 'MONA', 'y'.repeat(300)]) {
      const res = await t.post('/api/auth/invite/accept', { token, password });
      expect(res.statusCode, password).toBe(400);
      expect(res.json()).toMatchObject({ code: 'COVE_ERR_AUTH_PASSWORD_POLICY' });
    }
    expect((await t.post('/api/auth/invite/accept', { token, password: newPassword })).statusCode).toBe(200);
  });

  it('a newer invite replaces the older one; accepting ends older sessions (password reset)', async () => {
    const user = await t.createUser('nina');
    const oldSession = await t.signIn('nina');
    const first = await createInvite(t.app, user.id);
    const second = await createInvite(t.app, user.id);
    expect((await t.get(`/api/auth/invite/${first.token}`)).statusCode).toBe(404);
    expect(
      (await t.post('/api/auth/invite/accept', { token: second.token, password: newPassword })).statusCode,
    ).toBe(200);
    expect((await t.get('/api/me', oldSession)).statusCode).toBe(401);
  });

  it('does not skip an enrolled second factor', async () => {
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const user = await t.createUser('omar');
    await t.store.users.update(user.id, { totpSecret: secret });
    const { token } = await createInvite(t.app, user.id);
    const accept = await t.post('/api/auth/invite/accept', { token, password: newPassword });
    expect(accept.json()).toEqual({ mfaRequired: true });
    const pending = t.cookieOf(accept);
    expect((await t.get('/api/me', pending)).statusCode).toBe(401);
    expect((await t.post('/api/auth/mfa', { code: t.codeNow(secret) }, pending)).statusCode).toBe(200);
  });

  it('refuses the invite of a disabled user', async () => {
    const user = await t.createUser('pete', { password: null });
    const { token } = await createInvite(t.app, user.id);
    await t.store.users.update(user.id, { disabled: true });
    expect((await t.get(`/api/auth/invite/${token}`)).statusCode).toBe(404);
    expect((await t.post('/api/auth/invite/accept', { token, password: newPassword })).statusCode).toBe(404);
  });

  it('two concurrent accepts of one invite: exactly one wins', async () => {
    const user = await t.createUser('quin', { password: null });
    const { token } = await createInvite(t.app, user.id);
    const results = await Promise.all([
      t.post('/api/auth/invite/accept', { token, password: 'first racer password' }),
      t.post('/api/auth/invite/accept', { token, password: 'second racer password' }),
    ]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 404]);
    const winner = results[0]?.statusCode === 200 ? 'first racer password' : 'second racer password';
    expect((await t.login('quin', winner)).statusCode).toBe(200);
  });
});
