/**
 * The admin console's identity providers and SCIM provisioning (issue 19, item 4) in Chromium,
 * with mouse and keyboard: provider status from discovery (one provider answering on loopback,
 * one down), a SCIM token made and shown once with focus on Copy, used by an IdP (the test's own
 * SCIM calls), its last use, the user's source on the Users tab with no password reset, and the
 * revoke; also at 420 px wide.
 */
import type { Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoveryOnly } from '../helpers/oidc-discovery-stub.js';
import { okta } from '../integration/server/scim/idp-requests.js';
import { adminPassword, desktop, launchChromium, startCove, type CoveServer } from './cove-server.js';
import { AdminPage } from './models/admin-page.js';
import { LoginPage } from './models/login-page.js';

describe('admin console: identity providers and provisioning', () => {
  let cove: CoveServer;
  let discovery: Server;
  let browser: Browser;
  let page: Page;
  let admin: AdminPage;

  const signIn = async (viewport: { width: number; height: number }): Promise<Page> => {
    const p = await (await browser.newContext({ viewport })).newPage();
    const login = new LoginPage(p, cove.origin);
    await login.goto('/admin');
    await login.submitPassword('admin', adminPassword);
    await p.waitForURL(`${cove.origin}/admin`);
    return p;
  };

  const scim = (token: string, method: string, path: string, body?: unknown) =>
    fetch(`${cove.origin}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  beforeAll(async () => {
    const stub = await discoveryOnly('okta');
    discovery = stub.server;
    cove = await startCove({
      auth: {
        oidc: [
          {
            id: 'okta',
            name: 'Okta',
            issuer: stub.issuer,
            clientId: 'cove',
            clientSecret: 'not-a-real-secret-0123',
          },
          // Nothing listens there: a provider that is down.
          {
            id: 'entra',
            name: 'Entra ID',
            issuer: 'http://127.0.0.1:9/entra',
            clientId: 'cove',
            clientSecret: 'not-a-real-secret-0123',
          },
        ],
      },
    });
    browser = await launchChromium();
    page = await signIn(desktop);
    admin = new AdminPage(page, cove.origin);
  });

  afterAll(async () => {
    await browser?.close();
    await cove?.close();
    await new Promise((resolve) => discovery?.close(resolve));
  });

  it('shows each provider’s status from discovery, reached by arrow keys, and tests again on a click', async () => {
    await admin.goto('users');
    await page.focus('#tab-users');
    // Users → … → Identity providers with the arrow keys, as the tabs pattern allows (as many
    // presses as there are tabs in between, so a tab added to the console does not break this).
    const steps = await page.evaluate(() => {
      const tabs = Array.from(document.querySelectorAll('[role=tab]'), (t) => t.id);
      return tabs.indexOf('tab-identity-providers') - tabs.indexOf('tab-users');
    });
    expect(steps).toBeGreaterThan(0);
    for (let i = 0; i < steps; i++) await page.keyboard.press('ArrowRight');
    await page.locator('[data-testid=identity-providers-tab]').waitFor();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-identity-providers');
    const okRow = page.locator('[data-testid=provider-row][data-provider=okta]');
    const downRow = page.locator('[data-testid=provider-row][data-provider=entra]');
    await okRow.getByText('Working').waitFor();
    expect(await okRow.innerText()).toContain('Discovery works');
    await downRow.getByText('Not working').waitFor({ timeout: 20_000 });
    expect(await downRow.innerText()).toContain('Cove could not use Entra ID');
    expect(await downRow.innerText()).toContain('Check the issuer URL');
    await okRow.getByRole('button', { name: 'Test' }).click();
    await okRow.getByRole('button', { name: 'Test' }).and(page.locator(':not([disabled])')).waitFor();
    expect(await okRow.innerText()).toContain('Working');
  });

  it('creates a SCIM token shown once with focus on Copy; an IdP uses it; the user’s source shows; revoke stops it', async () => {
    await admin.openTab('provisioning');
    await page.click('#scim-token-name');
    await page.keyboard.type('Okta production');
    await page.selectOption('#scim-token-provider', 'okta');
    await page.focus('#scim-token-name');
    await page.keyboard.press('Enter');
    const box = page.locator('[data-testid=scim-token-box]');
    await box.waitFor();
    expect(await box.innerText()).toContain('shown only once');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe(
      'copy-scim-token',
    );
    const token = await page.inputValue('[data-testid=scim-token-value]');
    expect(token).toMatch(/^cove_scim_/);
    const row = page.locator('[data-testid=scim-token-row][data-token="Okta production"]');
    expect(await row.innerText()).toContain('Active');

    // The identity provider provisions a user with it.
    const created = await scim(token, 'POST', '/scim/v2/Users', okta.createUser);
    expect(created.status).toBe(201);
    await admin.openTab('users');
    const userRow = admin.userRow('test.user@okta.local');
    await userRow.waitFor();
    expect(await userRow.innerText()).toContain('SCIM: Okta production');
    expect(await userRow.innerText()).toContain('Signs in with okta');
    expect(await userRow.getByRole('button', { name: 'Reset password' }).count()).toBe(0);
    expect(await admin.userRow('admin').getByRole('button', { name: 'Reset password' }).count()).toBe(1);

    await admin.openTab('provisioning');
    expect(await row.locator('td').nth(3).innerText()).not.toBe('—');
    await row.getByRole('button', { name: 'Revoke Okta production' }).click();
    await page.getByRole('dialog').getByText('stops working at once').waitFor();
    await page.click('dialog button.btn-danger');
    await row.getByText('Revoked').waitFor();
    expect(await page.locator('[role=status]').first().innerText()).toContain('Okta production was revoked');
    const refused = await scim(token, 'GET', '/scim/v2/Users');
    expect(refused.status).toBe(401);
    // The page never showed it again.
    expect(await page.locator('[data-testid=scim-token-value]').count()).toBe(0);
  });

  it('fits a 420 px wide screen: the token and its Copy button stay on screen', async () => {
    const narrow = await signIn({ width: 420, height: 860 });
    const narrowAdmin = new AdminPage(narrow, cove.origin);
    await narrowAdmin.goto('provisioning');
    await narrow.fill('#scim-token-name', 'Entra narrow');
    await narrow.selectOption('#scim-token-provider', 'entra');
    await narrow.click('[data-testid=create-scim-token-form] button[type=submit]');
    const value = narrow.locator('[data-testid=scim-token-value]');
    await value.waitFor();
    const copy = narrow.locator('[data-testid=copy-scim-token]');
    for (const element of [value, copy]) {
      const box = await element.boundingBox();
      expect(box).not.toBeNull();
      expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(420);
    }
    expect(await narrow.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe(
      'copy-scim-token',
    );
    await narrow.context().close();
  });
});
