/**
 * The admin console's other tools against the real admin API: CSV bulk create, the group members
 * editor, disable/enable, invited users and new invite links, reset password (a new one-time
 * link), delete with confirmation, audit entries that read names, the Homes tab's units, and
 * what the console and a user see when STS does not answer (a loopback port with nothing
 * listening: never AWS). Homes are real loop-mounted files, removed afterwards.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freeLoopbackPort } from '../helpers/free-port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoopHomeVolumes } from '../../sandbox/homes/home-volumes.js';
import { adminPassword, desktop, launchChromium, phone, startCove, type CoveServer } from './cove-server.js';
import { AdminPage } from './models/admin-page.js';
import { LoginPage } from './models/login-page.js';
import { PortalPage } from './models/portal-page.js';

const GiB = 1024 ** 3;

describe('admin console', () => {
  let cove: CoveServer;
  let browser: Browser;
  let page: Page;
  let admin: AdminPage;
  let stsEndpoint: string;
  const homesRoot = mkdtempSync(join(tmpdir(), 'cove-e2e-admin-homes-'));
  const volumes = new LoopHomeVolumes({ root: homesRoot, reserveBytes: 0 });

  beforeAll(async () => {
    stsEndpoint = `http://127.0.0.1:${await freeLoopbackPort()}`;
    cove = await startCove(
      {
        homes: { sizeBytes: GiB },
        sts: { endpoint: stsEndpoint, requestTimeoutMs: 500, maxAttempts: 1, retryBudgetMs: 500 },
      },
      () => ({ homeVolumes: volumes }),
    );
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
    for (const home of await volumes.list()) await volumes.delete(home).catch(() => undefined);
    rmSync(homesRoot, { recursive: true, force: true });
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
    // Enabled again, and still waiting for the invite to be accepted.
    await admin.waitForUserRowText('student1', 'Invited');
    expect(await row().textContent()).not.toContain('Disabled');
  });

  it('shows a user who has not accepted the invite as Invited with the link’s expiry, makes a new link, and Active once the password is set', async () => {
    await admin.openTab('users');
    const invited = await admin.userRowText('student1');
    expect(invited).toContain('Invited');
    expect(invited).not.toContain('Active');
    // The link's expiry, as the page writes dates: the invite lifetime from now.
    const expiryDay = await page.evaluate(
      (ms) => new Date(Date.now() + ms).toLocaleDateString(undefined, { dateStyle: 'medium' }),
      cove.config.auth.inviteTtlS * 1000,
    );
    expect(invited).toContain(`Link expires ${expiryDay}`);

    await admin.userRow('student1').getByRole('button', { name: 'New invite link' }).click();
    await page.getByRole('dialog').getByText('current invite link stops working').waitFor();
    await page.getByRole('button', { name: 'Make a new link' }).click();
    const link = page.locator('[data-testid=invite-url]');
    await page.getByText('New invite link for student1').waitFor();
    const url = await link.inputValue();
    expect(url).toMatch(new RegExp(`^${cove.origin}/login\\?invite=`));

    // student1 opens the link in their own browser and sets a password.
    const theirs = await browser.newContext({ viewport: desktop });
    const student = new LoginPage(await theirs.newPage(), cove.origin);
    expect(await student.acceptInvite(url, 'student one password 1')).toBe('student1');
    await theirs.pages()[0]?.waitForURL(`${cove.origin}/`);
    await theirs.close();

    await admin.openTab('groups');
    await admin.openTab('users');
    const active = await admin.waitForUserRowText('student1', 'Active');
    expect(active).not.toContain('Invited');
    expect(await admin.userRow('student1').getByRole('button', { name: 'Reset password' }).count()).toBe(1);
  });

  it('resets a password to a new one-time link after confirmation; the user is Invited until they set one', async () => {
    await admin.openTab('users');
    await admin.userRow('student1').getByRole('button', { name: 'Reset password' }).click();
    await page.click('dialog button.btn-danger');
    const link = page.locator('[data-testid=invite-url]');
    await page.getByText('Password reset link for student1').waitFor();
    expect(await link.inputValue()).toMatch(new RegExp(`^${cove.origin}/login\\?invite=`));
    await admin.waitForUserRowText('student1', 'Invited');
  });

  it('shows names, not ids, in the audit log: the id on hover and in the download', async () => {
    const student1 = await cove.store.users.getByUsername('student1');
    const operators = await cove.store.groups.getByName('operators');
    await admin.openTab('audit');
    const row = page.locator('[data-testid=audit-row][data-action="admin.group.members"]').first();
    await row.waitFor();
    const text = await row.innerText();
    expect(text).toContain('added: student1');
    expect(text).toContain('removed: none');
    expect(text).toContain('group operators');
    expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
    // Hovering shows the id.
    const name = row.getByText('student1', { exact: true });
    await name.hover();
    expect(await name.getAttribute('title')).toBe(student1?.id);
    expect(await row.getByText('group operators').getAttribute('title')).toBe(`group:${operators?.id}`);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download JSON' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('cove-audit.json');
    const entries = JSON.parse(readFileSync((await download.path()) ?? '', 'utf8')) as {
      action: string;
      target: string;
      details: { added?: string[] };
    }[];
    const members = entries.find((e) => e.action === 'admin.group.members');
    expect(members).toMatchObject({ target: `group:${operators?.id}`, details: { added: [student1?.id] } });
  });

  it('keeps a group name such as class-101 on one line, even on a phone-sized screen', async () => {
    await admin.openTab('groups');
    await page.fill('#group-name', 'class-101');
    await page.fill('#group-description', 'Introduction to cloud computing, spring term, section one');
    await page.click('[data-testid=create-group-form] button[type=submit]');
    const name = page.locator('tr[data-group="class-101"] strong');
    await name.waitFor();
    await page.setViewportSize(phone);
    try {
      expect(await name.innerText()).toBe('class-101');
      // A name broken at its hyphen is drawn as two boxes.
      expect(await name.evaluate((el) => el.getClientRects().length)).toBe(1);
    } finally {
      await page.setViewportSize(desktop);
    }
  });

  it('shows a 1 GiB home as 1 GiB in Homes, and says which units it uses', async () => {
    const adminUser = await cove.store.users.getByUsername('admin');
    await volumes.ensure({ ownerId: adminUser?.id ?? '', region: 'eu-west-1' }, GiB);
    await admin.openTab('homes');
    const row = page.locator(`tr[data-home="${adminUser?.id}/eu-west-1"]`);
    await row.waitFor();
    const used = await row.locator('td').nth(2).innerText();
    expect(used).toMatch(/^\d+(\.\d)? (B|KiB|MiB) \/ 1 GiB$/);
    expect(await page.getByTestId('size-convention').innerText()).toContain('1 GiB = 1024 MiB');
  });

  it('STS does not answer: the user reads that credentials are not set up here, the console says what to configure', async () => {
    await admin.createAccount('123456789012', 'sandbox');
    await admin.createPermissionSet('Explorer', 1);
    await admin.assign('user', 'admin', '123456789012', 'Explorer');

    const portal = new PortalPage(page, cove.origin);
    await portal.goto();
    const panel = await portal.openCliDialog('123456789012', 'Explorer');
    expect(panel).toContain(
      'AWS credentials are not set up on this Cove server (it cannot get any from AWS STS). Your shell works without AWS access; tell your administrator.',
    );
    expect(panel).not.toMatch(/try again/i);

    await admin.goto('users');
    const health = await admin.serverHealthText();
    expect(health).toContain('AWS credentials are not working: STS does not answer');
    expect(health).toContain(`Endpoint: ${stsEndpoint}`);
    expect(health).toContain('last error ECONNREFUSED');
    expect(health).toContain('set sts.endpoint (COVE_STS_ENDPOINT) to an STS endpoint it can reach');
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
