import { afterEach, describe, expect, it } from 'vitest';
import { ensureFirstAdmin } from '../../../../server/auth/first-admin.js';
import { ConfigError } from '../../../../server/config.js';
import { startAuthApp, type AuthTestApp } from './auth-test-app.js';

describe('first admin', () => {
  let t: AuthTestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('uses COVE_ADMIN_PASSWORD when given: admin in the admins group, no change required', async () => {
    t = await startAuthApp();
    const result = await ensureFirstAdmin(t.app, 'the admin password from env');
    expect(result).toEqual({ adminCreated: true });
    const admin = await t.store.users.getByUsername('admin');
    expect(admin?.mustChangePassword).toBe(false);
    expect((await t.store.groups.groupsOf(admin?.id as string)).map((g) => g.name)).toEqual(['admins']);
    const cookie = await t.signIn('admin', 'the admin password from env');
    expect((await t.get('/api/me', cookie)).json()).toMatchObject({ username: 'admin', isAdmin: true });
    expect((await t.get('/api/test/admin', cookie)).statusCode).toBe(200);
    expect((await t.store.audit.list()).map((e) => e.action)).toContain('auth.first_admin.created');
  });

  it('without it, returns a one-time password that must be changed at first sign-in', async () => {
    t = await startAuthApp();
    const result = await ensureFirstAdmin(t.app, undefined);
    expect(result.adminCreated).toBe(true);
    const oneTime = result.oneTimeAdminPassword as string;
    expect(oneTime).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const login = await t.login('admin', oneTime);
    expect(login.json()).toMatchObject({ passwordChangeRequired: true });
    const cookie = t.cookieOf(login);
    expect((await t.get('/api/test/admin', cookie)).json()).toMatchObject({
      code: 'COVE_ERR_AUTH_PASSWORD_CHANGE_REQUIRED',
    });
    const change = await t.post(
      '/api/auth/password',
      { currentPassword: oneTime, newPassword: 'admin chose this one' },
      cookie,
    );
    expect(change.statusCode).toBe(200);
    expect((await t.get('/api/test/admin', t.cookieOf(change))).statusCode).toBe(200);
  });

  it('is idempotent and does nothing once any user exists', async () => {
    t = await startAuthApp();
    expect((await ensureFirstAdmin(t.app, undefined)).adminCreated).toBe(true);
    expect(await ensureFirstAdmin(t.app, undefined)).toEqual({ adminCreated: false });
    expect(await t.store.users.count()).toBe(1);

    const other = await startAuthApp();
    try {
      await other.createUser('someone');
      expect(await ensureFirstAdmin(other.app, 'whatever password')).toEqual({ adminCreated: false });
      expect(await other.store.users.getByUsername('admin')).toBeUndefined();
    } finally {
      await other.close();
    }
  });

  it('reuses an existing admins group', async () => {
    t = await startAuthApp();
    const group = await t.store.groups.create({ name: 'admins', description: 'seeded' });
    await ensureFirstAdmin(t.app, undefined);
    expect(await t.store.groups.list()).toHaveLength(1);
    const admin = await t.store.users.getByUsername('admin');
    expect(await t.store.groups.members(group.id)).toEqual([admin?.id]);
  });

  it('refuses a COVE_ADMIN_PASSWORD that breaks the policy, creating nothing', async () => {
    t = await startAuthApp();
    await expect(ensureFirstAdmin(t.app, 'short')).rejects.toThrow(ConfigError);
    await expect(ensureFirstAdmin(t.app, 'short')).rejects.toThrow(/COVE_ADMIN_PASSWORD/);
    expect(await t.store.users.count()).toBe(0);
  });
});
