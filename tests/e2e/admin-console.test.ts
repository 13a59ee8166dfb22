/**
 * The admin console's other tools against the real admin API: CSV bulk create, the group members
 * editor, disable/enable, reset password (a new one-time link), delete with confirmation.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPassword, desktop, launchChromium, startCove, type CoveServer } from './cove-server.js';
import { AdminPage } from './models/admin-page.js';
import { LoginPage } from './models/login-page.js';

describe('admin console', () => {
  let cove: CoveServer;
  let browser: Browser;
  let page: Page;
  let admin: AdminPage;

  beforeAll(async () => {
    cove = await startCove();
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: desktop })).newPage();
    const login = new LoginPage(page, cove.origin);
    await login.goto('/admin');
    await login.submitPassword('admin', adminPassword);
    await page.waitForURL(`${cove.origin}/admin`);
    admin = new AdminPage(page, cove.origin);
  });

  afterAll(async () => {
    await browser?.close();
    await cove?.close();
  });

  it('creates users from CSV and shows the returned invite links', async () => {
    const csv = await admin.bulkCreate(
      'name,email,group\nstudent1,s1@example.com,class-a\n"student2",,class-a\n',
    );
    const lines = csv.trim().split(/\r?\n/);
    expect(lines[0]).toBe('username,email,group,inviteUrl');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(new RegExp(`^student1,s1@example.com,class-a,${cove.origin}/login\\?invite=`));
    expect(await page.getAttribute('[data-testid=bulk-download]', 'download')).toBe('cove-invites.csv');
    expect(await admin.userRowText('student2')).toContain('class-a');
  });

  it('refuses a bad CSV row with the server’s message and creates nothing', async () => {
    await admin.openTab('users');
    const before = await page.locator('[data-testid=user-row]').count();
    await page.fill('[data-testid=bulk-form] textarea', 'name,email,group\n,nobody@example.com,class-b\n');
    await page.click('[data-testid=bulk-form] button[type=submit]');
    const error = page.locator('[data-testid=bulk-form] [data-testid=admin-alert]:not([hidden])');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/row/i);
    expect(await page.locator('[data-testid=user-row]').count()).toBe(before);
  });

  it('edits group members in the dialog', async () => {
    await admin.openTab('groups');
    await page.fill('#group-name', 'operators');
    await page.click('[data-testid=create-group-form] button[type=submit]');
    const row = page.locator('tr[data-group="operators"]');
    await row.waitFor();
    await row.locator('button', { hasText: 'Edit members' }).click();
    await page.check('[data-testid=members] input[data-username="student1"]');
    await page.click('dialog button:has-text("Save members")');
    await page.waitForFunction(() =>
      document.querySelector('tr[data-group="operators"]')?.textContent?.includes('1 member'),
    );
    expect(await row.textContent()).toContain('student1');
  });

  it('disables and re-enables a user', async () => {
    await admin.openTab('users');
    const row = () => page.locator('[data-testid=user-row][data-username="student1"]');
    await row().locator('button', { hasText: 'Disable' }).click();
    await page.waitForFunction(() =>
      document.querySelector('[data-username="student1"]')?.textContent?.includes('Disabled'),
    );
    await row().locator('button', { hasText: 'Enable' }).click();
    await page.waitForFunction(() =>
      document.querySelector('[data-username="student1"]')?.textContent?.includes('Active'),
    );
    expect(await row().textContent()).not.toContain('Disabled');
  });

  it('resets a password to a new one-time link after confirmation', async () => {
    await admin.openTab('users');
    await page
      .locator('[data-testid=user-row][data-username="student2"] button', { hasText: 'Reset password' })
      .click();
    await page.click('dialog button.btn-danger');
    const link = page.locator('[data-testid=invite-url]');
    await link.waitFor();
    expect(await link.inputValue()).toMatch(new RegExp(`^${cove.origin}/login\\?invite=`));
  });

  it('deletes a user only after confirmation', async () => {
    await admin.openTab('users');
    const remove = page.locator('[data-testid=user-row][data-username="student2"] button', {
      hasText: 'Delete',
    });
    await remove.click();
    await page.click('dialog button:has-text("Cancel")');
    expect(await page.locator('[data-username="student2"]').count()).toBe(1);
    await remove.click();
    await page.click('dialog button.btn-danger');
    await page.waitForFunction(() => document.querySelector('[data-username="student2"]') === null);
    expect(await page.locator('[data-testid=user-row]').count()).toBeGreaterThan(0);
  });

  it('refuses to let the admin disable or delete themselves', async () => {
    await admin.openTab('users');
    const own = page.locator('[data-testid=user-row][data-username="admin"]');
    expect(await own.locator('button', { hasText: 'Disable' }).isDisabled()).toBe(true);
    expect(await own.locator('button', { hasText: 'Delete' }).isDisabled()).toBe(true);
  });
});
