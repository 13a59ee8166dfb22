/** The sign-in page on its own: errors, redirects and where `next` may lead. */
import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPassword, launchChromium, phone, startCove, type CoveServer } from './cove-server.js';
import { LoginPage } from './models/login-page.js';
import { PortalPage } from './models/portal-page.js';

describe('sign-in page', () => {
  let cove: CoveServer;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync('/tmp/cove-shots', { recursive: true });
    cove = await startCove();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await cove?.close();
  });

  it('redirects / without a session to /login?next=%2F', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${cove.origin}/`);
    expect(page.url()).toBe(`${cove.origin}/login?next=%2F`);
    await page.locator('#login-form').waitFor();
    await context.close();
  });

  it('shows the server’s message for a wrong password and keeps the user name', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const login = new LoginPage(page, cove.origin);
    await login.goto();
    await login.submitPassword('admin', 'not the password');
    expect(await login.alertText()).toContain('user name or password is wrong');
    expect(await page.inputValue('#username')).toBe('admin');
    expect(await page.inputValue('#password')).toBe('');
    expect(await page.isEnabled('#login-form button[type=submit]')).toBe(true);
    await page.screenshot({ path: '/tmp/cove-shots/login-error-desktop.png' });
    await context.close();
  });

  it('ignores next=//evil.example and other off-site targets', async () => {
    for (const next of [
      '//evil.example',
      'https://evil.example/',
      '/\\evil.example',
      'javascript:alert(1)',
    ]) {
      const context = await browser.newContext();
      const page = await context.newPage();
      const login = new LoginPage(page, cove.origin);
      await login.goto(next);
      await login.submitPassword('admin', adminPassword);
      await page.waitForURL(`${cove.origin}/`);
      expect(new URL(page.url()).origin, next).toBe(cove.origin);
      await context.close();
    }
  });

  it('returns to a local next path after sign-in', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${cove.origin}/admin`);
    expect(page.url()).toBe(`${cove.origin}/login?next=%2Fadmin`);
    await new LoginPage(page, cove.origin).submitPassword('admin', adminPassword);
    await page.waitForURL(`${cove.origin}/admin`);
    await page.locator('[data-testid=users-tab]').waitFor();
    await context.close();
  });

  it('sends an already signed-in visitor of /login straight on', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const login = new LoginPage(page, cove.origin);
    await login.goto();
    await login.submitPassword('admin', adminPassword);
    await page.waitForURL(`${cove.origin}/`);
    await page.goto(`${cove.origin}/login?next=%2Fadmin`);
    await page.waitForURL(`${cove.origin}/admin`);
    await context.close();
  });

  it('shows an empty portal with a clear message, and fits a phone', async () => {
    const context = await browser.newContext({ viewport: phone });
    const page = await context.newPage();
    const login = new LoginPage(page, cove.origin);
    await login.goto();
    await page.screenshot({ path: '/tmp/cove-shots/login-phone.png' });
    await login.submitPassword('admin', adminPassword);
    await page.waitForURL(`${cove.origin}/`);
    const portal = new PortalPage(page, cove.origin);
    expect(await portal.emptyMessage()).toBe(
      'No AWS accounts are assigned to you yet. Ask your administrator.',
    );
    await page.screenshot({ path: '/tmp/cove-shots/portal-empty-phone.png', fullPage: true });
    expect(
      await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth),
    ).toBeLessThanOrEqual(0);
    await context.close();
  });

  it('says you signed out after Sign out, and a reload is a plain sign-in page', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const login = new LoginPage(page, cove.origin);
    await login.goto();
    await login.submitPassword('admin', adminPassword);
    await page.waitForURL(`${cove.origin}/`);
    await new PortalPage(page, cove.origin).signOut();
    expect(await login.alertText()).toBe('You signed out. Sign in again to continue.');
    expect(await page.locator('#login-form').isVisible()).toBe(true);
    expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe('/login');
    // Really signed out: the portal sends us back here.
    await page.goto(`${cove.origin}/`);
    await page.waitForURL(`${cove.origin}/login?next=%2F`);
    await page.locator('#login-form').waitFor();
    expect(await page.locator('#login-alert').isHidden()).toBe(true);
    await context.close();
  });

  it('rejects an invite link that does not exist with a clear message', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${cove.origin}/login?invite=not-a-real-token`);
    expect(await new LoginPage(page, cove.origin).alertText()).toMatch(/invite link is not valid/i);
    await context.close();
  });
  // Last in this file: it throttles this IP's sign-ins for the account it uses.
  it('counts down and keeps Sign in disabled while sign-in is throttled', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const login = new LoginPage(page, cove.origin);
    await login.goto();
    let text = '';
    for (let attempt = 0; attempt < 8 && !text.includes('Try again in'); attempt += 1) {
      await login.submitPassword('mallory', `wrong-password-${attempt}`);
      text = await page
        .waitForFunction(() => {
          const alert = document.querySelector('#login-alert:not([hidden])');
          const button = document.querySelector<HTMLButtonElement>('#login-form button[type=submit]');
          // Settled: the alert shows and the request is over (busy flag gone).
          return alert && button && !button.hasAttribute('aria-busy') ? alert.textContent : null;
        })
        .then(async (handle) => (await handle.jsonValue()) ?? '');
    }
    expect(text).toMatch(/Try again in \d+ s/);
    expect(await page.isDisabled('#login-form button[type=submit]')).toBe(true);
    await page.screenshot({ path: '/tmp/cove-shots/login-throttled-desktop.png' });
    await context.close();
  });
});
