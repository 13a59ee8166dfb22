/**
 * The whole path a new user takes, in a real Chromium against a real server: an admin sets up an
 * account, a permission set, a user with MFA required and an assignment through the admin UI; the
 * user accepts the invite, sets a password, enrolls TOTP, sees the portal; signs out and back in
 * with password + TOTP. Screenshots go to /tmp/cove-shots/ (desktop and phone).
 */
import { mkdirSync } from 'node:fs';
import { TOTP } from 'otpauth';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPassword, desktop, launchChromium, phone, startCove, type CoveServer } from './cove-server.js';
import { AdminPage } from './models/admin-page.js';
import { LoginPage } from './models/login-page.js';
import { PortalPage } from './models/portal-page.js';

const shots = '/tmp/cove-shots';
const accountId = '123456789012';
const userPassword = 'correct horse battery';

const totpFor = (secret: string) => new TOTP({ secret, digits: 6, period: 30, algorithm: 'SHA1' });

/** The page's width must fit the viewport: nothing scrolls sideways on a phone. */
async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

describe('access portal, end to end', () => {
  let cove: CoveServer;
  let browser: Browser;
  let adminContext: BrowserContext;
  let userContext: BrowserContext;
  let inviteUrl = '';
  let secret = '';
  /** The code that finished enrollment; the server claimed its time step. */
  let enrollmentCode = '';
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    cove = await startCove();
    browser = await launchChromium();
    adminContext = await browser.newContext({ viewport: desktop });
    userContext = await browser.newContext({ viewport: desktop });
  });

  afterAll(async () => {
    await browser?.close();
    await cove?.close();
  });

  const track = (page: Page) => {
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // A CSP violation shows up as a console error; any of those is a bug.
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    return page;
  };

  it('lets the admin set up an account, a permission set, a user with MFA and an assignment', async () => {
    const page = track(await adminContext.newPage());
    const login = new LoginPage(page, cove.origin);
    await login.goto();
    await page.screenshot({ path: `${shots}/login-desktop.png` });
    await login.submitPassword('admin', adminPassword);
    await page.waitForURL(`${cove.origin}/`);

    const admin = new AdminPage(page, cove.origin);
    await admin.goto('accounts');
    await admin.createAccount(accountId, 'Sandbox');
    await admin.createPermissionSet(
      'ShellUser',
      2,
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:List*","Resource":"*"}]}',
    );
    inviteUrl = await admin.createUser('alice', { mfaRequired: true, email: 'alice@example.com' });
    expect(inviteUrl).toMatch(new RegExp(`^${cove.origin}/login\\?invite=[A-Za-z0-9_-]+$`));
    expect(await admin.userRowText('alice')).toContain('alice@example.com');
    await page.screenshot({ path: `${shots}/admin-users-desktop.png`, fullPage: true });

    await admin.assign('user', 'alice', accountId, 'ShellUser');
    const assignments = await page.textContent('[data-testid=assignments-tab]');
    expect(assignments).toContain('Sandbox');
    expect(assignments).toContain('ShellUser');
    await page.screenshot({ path: `${shots}/admin-assignments-desktop.png`, fullPage: true });

    // A wrong account id is refused in the form with a clear message.
    await admin.openTab('accounts');
    await page.fill('#account-id', '12345');
    await page.fill('#account-name', 'Broken');
    await page.click('[data-testid=create-account-form] button[type=submit]');
    expect(await admin.formError()).toContain('12 digits');

    const actions = await admin.auditActions();
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.some((a) => a.startsWith('auth.login'))).toBe(true);
    await page.screenshot({ path: `${shots}/admin-audit-desktop.png`, fullPage: true });

    await page.setViewportSize(phone);
    await admin.goto('users');
    await page.screenshot({ path: `${shots}/admin-users-phone.png`, fullPage: true });
    // Wide tables scroll inside their own box; the page itself does not.
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
  });

  it('takes the invited user through password and MFA enrollment to the portal', async () => {
    const page = track(await userContext.newPage());
    const login = new LoginPage(page, cove.origin);
    expect(await login.acceptInvite(inviteUrl, userPassword)).toBe('alice');
    // The invite token leaves the address bar once read.
    expect(page.url()).not.toContain('invite=');

    secret = await login.enrollmentSecret();
    expect(secret).toMatch(/^[A-Z2-7]+=*$/);
    expect(await login.qrCodeShown()).toBe(true);
    await page.screenshot({ path: `${shots}/login-enroll-desktop.png` });
    enrollmentCode = totpFor(secret).generate();
    await login.submitEnrollment(enrollmentCode);
    await page.waitForURL(`${cove.origin}/`);

    const portal = new PortalPage(page, cove.origin);
    await portal.waitLoaded();
    expect(await portal.currentUser()).toBe('alice');
    const accounts = await portal.accounts();
    expect(accounts.map((a) => a.accountId)).toEqual([accountId]);
    expect(accounts[0]?.text).toContain('Sandbox');
    expect(await portal.permissionSets(accountId)).toEqual(['ShellUser']);

    const link = await portal.openShellLink(accountId, 'ShellUser');
    expect(link.href).toBe(`/shell/eu-west-1?account=${accountId}&permissionSet=ShellUser`);
    expect(link.target).toBe('_blank');
    expect(link.rel).toContain('noopener');
    await portal.chooseRegion('us-east-1');
    expect((await portal.openShellLink(accountId, 'ShellUser')).href).toBe(
      `/shell/us-east-1?account=${accountId}&permissionSet=ShellUser`,
    );
    // No STS is reachable in this test: the panel must say so plainly, as a missing setup and not
    // a retry hint (its success path is in cli-access.test.ts, against a local STS).
    const cli = await portal.openCliDialog(accountId, 'ShellUser');
    expect(cli).toContain('AWS credentials are not set up on this Cove server');
    expect(cli).not.toMatch(/try again/i);
    // A plain user has no Admin link and gets the 403 page at /admin.
    expect(await page.locator('a[href="/admin"]').count()).toBe(0);
    await page.screenshot({ path: `${shots}/portal-desktop.png`, fullPage: true });

    await page.setViewportSize(phone);
    await page.reload();
    await portal.waitLoaded();
    await portal.permissionSets(accountId);
    await page.screenshot({ path: `${shots}/portal-phone.png`, fullPage: true });
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    await page.setViewportSize(desktop);

    const adminPage = await page.goto(`${cove.origin}/admin`);
    expect(adminPage?.status()).toBe(403);
  });

  it('signs the user out and back in with password and a fresh TOTP code', async () => {
    const page = track(await userContext.newPage());
    const portal = new PortalPage(page, cove.origin);
    await portal.goto();
    await portal.signOut();

    // Signed out for real: the portal now sends the browser to sign in.
    await page.goto(`${cove.origin}/`);
    expect(page.url()).toBe(`${cove.origin}/login?next=%2F`);

    const login = new LoginPage(page, cove.origin);
    await login.submitPassword('alice', userPassword);
    await page.locator('#mfa-form').waitFor();
    await page.screenshot({ path: `${shots}/login-mfa-desktop.png` });

    // The enrollment code's step was claimed, so the same code is refused as a replay.
    await login.submitMfa(enrollmentCode);
    expect(await login.alertText()).toMatch(/already used/i);

    // The step after the current one is inside the server's ±1 window and later than any claimed.
    await login.submitMfa(totpFor(secret).generate({ timestamp: Date.now() + 30_000 }));
    await page.waitForURL(`${cove.origin}/`);
    await portal.waitLoaded();
    expect(await portal.currentUser()).toBe('alice');
  });

  it('raised no script errors or CSP violations in any page', () => {
    // 401/403 come from the sign-in steps, the one 503 from Command line access without an STS.
    expect(pageErrors.filter((e) => !/status of (40[13]|503)/.test(e))).toEqual([]);
  });
});
