/**
 * Sign-in with an identity provider in a real Chromium: the sign-in page offers "Sign in with
 * Corp SSO", the user signs in on the provider's own page (oidc-provider on loopback), comes back
 * to the portal and sees the account and permission set assigned to the group the provider's
 * `groups` claim put them in; Sign out also signs out at the provider and ends on Cove's sign-in
 * page. No shell is opened, so no Docker: the fake sandbox driver.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { desktop, launchChromium, startCove, type CoveServer } from './cove-server.js';
import { LoginPage } from './models/login-page.js';
import { PortalPage } from './models/portal-page.js';
import { freeLoopbackPort } from '../helpers/free-port.js';
import { startTestIdp, type TestIdp } from '../helpers/oidc-provider.js';
import { FakeSandboxDriver } from '../unit/server/environments/fake-sandbox-driver.js';
import { totpCode } from '../../server/auth/totp.js';

const accountId = '210987654321';
const clientId = 'cove-e2e';
const clientSecret = 'e2e-client-secret-not-real';

describe('sign in with an identity provider', () => {
  let cove: CoveServer;
  let idp: TestIdp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // Cove reads the provider's discovery at the first sign-in, so it can start first.
    const idpPort = await freeLoopbackPort();
    const driver = new FakeSandboxDriver();
    cove = await startCove(
      {
        homes: { enabled: false },
        auth: {
          oidc: [
            {
              id: 'corp',
              name: 'Corp SSO',
              issuer: `http://127.0.0.1:${idpPort}`,
              clientId,
              clientSecret,
              scopes: ['openid', 'profile', 'email', 'groups'],
            },
          ],
        },
      },
      () => ({ driverFactory: () => driver }),
    );
    idp = await startTestIdp({
      port: idpPort,
      client: {
        clientId,
        clientSecret,
        redirectUris: [`${cove.origin}/auth/oidc/corp/callback`],
        postLogoutRedirectUris: [`${cove.origin}/login?signed-out=1`],
      },
      users: [
        {
          sub: 'sub-olga',
          password: 'olga-idp-password',
          preferred_username: 'olga',
          groups: ['platform-team'],
        },
      ],
    });
    const { store } = cove;
    const group = await store.groups.create({ name: 'platform-team' });
    await store.accounts.create({ accountId, name: 'Platform Prod' });
    const set = await store.permissionSets.create({
      name: 'PlatformOperator',
      description: 'Runs the platform',
      sessionDurationS: 3600,
      roleArnTemplate: 'arn:aws:iam::{accountId}:role/PlatformOperator',
    });
    await store.assignments.create({
      principalType: 'group',
      principalId: group.id,
      accountId,
      permissionSetId: set.id,
    });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: desktop });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // The sign-in page asks /api/me first and expects a 401 while signed out; anything else is a bug.
      const expected401 = /status of 401/.test(message.text()) && new URL(page.url()).pathname === '/login';
      if (message.type() === 'error' && page.url().startsWith(cove.origin) && !expected401)
        pageErrors.push(message.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await cove?.close();
    await idp?.stop();
  });

  it('signs in at the provider and shows the portal with the group’s account and permission set', async () => {
    const login = new LoginPage(page, cove.origin);
    await login.goto();
    expect(await login.providerButtons()).toEqual(['Sign in with Corp SSO']);
    await login.signInWith('Corp SSO');
    // The provider's own page, on its own origin.
    await page.waitForURL(`${idp.issuer}/interaction/**`);
    await page.getByLabel('User name').fill('olga');
    await page.getByLabel('Password').fill('olga-idp-password');
    await page.getByRole('button', { name: 'Sign in at the IdP' }).click();
    await page.waitForURL(`${cove.origin}/`);

    const portal = new PortalPage(page, cove.origin);
    const accounts = await portal.accounts();
    expect(accounts.map((a) => a.accountId)).toEqual([accountId]);
    expect(accounts[0]?.text).toContain('Platform Prod');
    expect(await portal.permissionSets(accountId)).toEqual(['PlatformOperator']);
    const screen = await page.locator('main').innerText();
    expect(screen).toContain('Platform Prod');
    expect(screen).toContain('PlatformOperator');
    expect(await page.locator('header').innerText()).toContain('olga');
    expect(pageErrors).toEqual([]);
  });

  it('signs out at the provider too and ends on Cove’s sign-in page', async () => {
    await page.getByTestId('sign-out').click();
    await page.waitForURL(`${idp.issuer}/session/end**`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${cove.origin}/login**`);
    await page.locator('#login-form').waitFor();
    expect(await page.locator('main').innerText()).toContain('You signed out');
    const me = await page.evaluate(async () => (await fetch('/api/me')).status);
    expect(me).toBe(401);
  });

  it('with Cove TOTP enrolled and the provider not trusted for MFA, asks for the code after the provider', async () => {
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const olga = await cove.store.users.getByUsername('olga');
    await cove.store.users.update(olga?.id ?? '', { totpSecret: secret });
    const login = new LoginPage(page, cove.origin);
    await login.goto();
    await login.signInWith('Corp SSO');
    await page.waitForURL(`${idp.issuer}/interaction/**`);
    await page.getByLabel('User name').fill('olga');
    await page.getByLabel('Password').fill('olga-idp-password');
    await page.getByRole('button', { name: 'Sign in at the IdP' }).click();
    await page.waitForURL(`${cove.origin}/login**`);
    await login.submitMfa(totpCode(secret, Date.now()));
    await page.waitForURL(`${cove.origin}/`);
    expect(await new PortalPage(page, cove.origin).permissionSets(accountId)).toEqual(['PlatformOperator']);
    expect(pageErrors).toEqual([]);
  });
});
