/**
 * The page routes: who gets which page, where signed-out visitors go, and the headers every page
 * carries. Runs against a small fixture of built files so it does not depend on a Vite build.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../helpers/test-app.js';

const pages = ['login', 'index', 'shell', 'admin'] as const;

function writeFixture(): string {
  const root = mkdtempSync(join(tmpdir(), 'cove-web-'));
  mkdirSync(join(root, 'assets'));
  for (const page of pages)
    writeFileSync(join(root, `${page}.html`), `<!doctype html><title>${page}</title><p>page:${page}</p>`);
  writeFileSync(join(root, 'assets', 'portal-AbC123.js'), 'export const x = 1;\n');
  return root;
}

describe('web pages', () => {
  let t: TestApp;
  let webRoot: string;
  const cookies: Record<string, string> = {};

  async function sessionFor(
    username: string,
    opts: { admin?: boolean; stage?: 'full' | 'mfa'; mustChangePassword?: boolean } = {},
  ) {
    const user = await t.store.users.create({
      username,
      mustChangePassword: opts.mustChangePassword ?? false,
    });
    if (opts.admin) {
      const admins =
        (await t.store.groups.getByName('admins')) ?? (await t.store.groups.create({ name: 'admins' }));
      await t.store.groups.addMember(admins.id, user.id);
    }
    const { token } = await t.app.sessions.create(user.id, opts.stage ?? 'full');
    return `${t.app.sessionCookieName}=${token}`;
  }

  const get = (url: string, cookie?: string) =>
    t.app.inject({ method: 'GET', url, headers: cookie ? { cookie } : {} });

  beforeAll(async () => {
    webRoot = writeFixture();
    t = await createTestApp(
      {
        regions: [
          { id: 'eu-west-1', name: 'Europe (Ireland)' },
          { id: 'us-east-1', name: 'US East (N. Virginia)' },
        ],
      },
      { webRoot },
    );
    cookies.user = await sessionFor('pat');
    cookies.admin = await sessionFor('root-admin', { admin: true });
    cookies.pending = await sessionFor('mfa-pending', { stage: 'mfa' });
    cookies.mustChange = await sessionFor('new-hire', { mustChangePassword: true });
  });

  afterAll(async () => {
    await t?.close();
    rmSync(webRoot, { recursive: true, force: true });
  });

  it('redirects a signed-out visitor from / to /login?next=%2F', async () => {
    const res = await get('/');
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/login?next=%2F');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('keeps the shell path and its query in next', async () => {
    const res = await get('/shell/eu-west-1?account=123456789012&permissionSet=ReadOnlyAccess');
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe(
      `/login?next=${encodeURIComponent('/shell/eu-west-1?account=123456789012&permissionSet=ReadOnlyAccess')}`,
    );
  });

  it('sends an MFA-pending session to /login for every signed-in page', async () => {
    for (const url of ['/', '/admin', '/shell/eu-west-1']) {
      const res = await get(url, cookies.pending);
      expect(res.statusCode, url).toBe(302);
      expect(res.headers.location, url).toBe(`/login?next=${encodeURIComponent(url)}`);
    }
  });

  it('sends a session that must still set a password back to /login', async () => {
    const res = await get('/', cookies.mustChange);
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/login?next=%2F');
  });

  it('ignores a forged or expired cookie', async () => {
    const res = await get('/admin', `${t.app.sessionCookieName}=forged-value`);
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/login?next=%2Fadmin');
  });

  it('serves the login page to anyone, with the security headers and no-store', async () => {
    const res = await get('/login?next=%2F');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('page:login');
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('serves the portal and the shell page to a signed-in user', async () => {
    const pat = (await t.store.users.list()).find((u) => u.username === 'pat');
    await t.app.directory.createAccount({ accountId: '123456789012', name: 'Pages' });
    await t.app.directory.createPermissionSet({ name: 'ReadOnlyAccess', sessionDurationS: 3600 });
    await t.app.directory.createAssignment({
      principalType: 'user',
      principalId: pat?.id ?? '',
      accountId: '123456789012',
      permissionSet: 'ReadOnlyAccess',
    });
    const portal = await get('/', cookies.user);
    expect(portal.statusCode).toBe(200);
    expect(portal.body).toContain('page:index');
    expect(portal.headers['cache-control']).toBe('no-store');
    expect(portal.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    const shell = await get(
      '/shell/us-east-1?account=123456789012&permissionSet=ReadOnlyAccess',
      cookies.user,
    );
    expect(shell.statusCode).toBe(200);
    expect(shell.body).toContain('page:shell');
  });

  it('answers 403 for an account × permission set the user does not have, before the page', async () => {
    for (const query of [
      'account=123456789012&permissionSet=AdministratorAccess',
      'account=999999999999&permissionSet=ReadOnlyAccess',
      'account=123456789012',
    ]) {
      const res = await get(`/shell/us-east-1?${query}`, cookies.user);
      expect(res.statusCode, query).toBe(403);
      expect(res.body).toContain('No access to that account');
      expect(res.body).not.toContain('page:shell');
    }
  });

  it('answers 404 for a region Cove does not offer', async () => {
    for (const region of ['xx-fake-1', 'us-east-1..', 'US-EAST-1', 'a'.repeat(60)]) {
      const res = await get(`/shell/${region}`, cookies.user);
      expect(res.statusCode, region).toBe(404);
      expect(res.body).not.toContain('page:shell');
    }
  });

  it('answers 403 to a signed-in non-admin on /admin, and serves it to an admin', async () => {
    const refused = await get('/admin', cookies.user);
    expect(refused.statusCode).toBe(403);
    expect(refused.headers['content-type']).toMatch(/^text\/html/);
    expect(refused.body).toContain('Administrators only');
    expect(refused.body).not.toContain('page:admin');
    expect(refused.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    const allowed = await get('/admin', cookies.admin);
    expect(allowed.statusCode).toBe(200);
    expect(allowed.body).toContain('page:admin');
    expect(allowed.headers['cache-control']).toBe('no-store');
  });

  it('serves hashed assets with a long immutable cache', async () => {
    const res = await get('/assets/portal-AbC123.js');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/javascript/);
    expect(res.headers['cache-control']).toContain('max-age=31536000');
    expect(res.headers['cache-control']).toContain('immutable');
  });

  it('does not serve HTML pages or anything outside assets through /assets/', async () => {
    for (const url of [
      '/assets/../admin.html',
      '/assets/..%2fadmin.html',
      '/assets/%2e%2e/admin.html',
      '/admin.html',
    ]) {
      const res = await get(url);
      expect(res.body, url).not.toContain('page:admin');
      expect(res.statusCode, url).toBeGreaterThanOrEqual(300);
    }
  });
});

describe('web pages before the build', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({}, { webRoot: join(tmpdir(), `cove-missing-${process.pid}-${Date.now()}`) });
  });

  afterAll(async () => {
    await t?.close();
  });

  it('answers 503 telling the operator to run npm run build', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/login' });
    expect(page.statusCode).toBe(503);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('npm run build');
    const asset = await t.app.inject({ method: 'GET', url: '/assets/login-x.js' });
    expect(asset.statusCode).toBe(503);
  });
});
