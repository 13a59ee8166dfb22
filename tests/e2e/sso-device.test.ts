/**
 * `aws sso login` as a person lives it, in a real Chromium against a real Cove: the command line
 * (here its HTTP calls, as the SDK sends them) starts a device sign-in; the person opens the
 * verification link, signs in with password and TOTP (the link survives the MFA step), checks
 * the code and answers with the keyboard; the command line gets its token, or is told the
 * request was denied. Then the portal's "Use from your laptop" block and its Copy button.
 * Screenshot: /tmp/cove-shots/sso-device.png.
 */
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newTotpSecret, totpCode } from '../../server/auth/totp.js';
import { adminPassword, launchChromium, startCove, type CoveServer } from './cove-server.js';
import { LoginPage } from './models/login-page.js';
import { DevicePage } from './models/device-page.js';

const shots = '/tmp/cove-shots';
const deviceGrant = 'urn:ietf:params:oauth:grant-type:device_code';

describe('Authorize request for the AWS CLI', () => {
  let cove: CoveServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let totpSecret = '';
  const pageErrors: string[] = [];

  /** What the CLI sends, as JSON, to Cove's SSO OIDC endpoint. */
  const oidc = async (path: string, body: unknown) => {
    const response = await fetch(`${cove.origin}/aws/oidc${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return {
      status: response.status,
      type: response.headers.get('x-amzn-errortype'),
      body: (await response.json()) as Record<string, unknown>,
    };
  };

  const startSignIn = async () => {
    const client = (
      await oidc('/client/register', { clientName: 'botocore-client-cove', clientType: 'public' })
    ).body as { clientId: string; clientSecret: string };
    const device = (await oidc('/device_authorization', { ...client, startUrl: `${cove.origin}/start` }))
      .body as {
      deviceCode: string;
      userCode: string;
      verificationUri: string;
      verificationUriComplete: string;
    };
    const poll = () => oidc('/token', { ...client, grantType: deviceGrant, deviceCode: device.deviceCode });
    return { device, poll };
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    cove = await startCove({ sso: { pollIntervalS: 1 } });
    const admin = await cove.store.users.getByUsername('admin');
    if (!admin) throw new Error('no admin user');
    totpSecret = newTotpSecret();
    await cove.store.users.update(admin.id, { totpSecret });
    await cove.app.directory.createAccount({ accountId: '210987654321', name: 'Analytics' });
    await cove.app.directory.createAssignment({
      principalType: 'user',
      principalId: admin.id,
      accountId: '210987654321',
      permissionSet: 'ReadOnlyAccess',
    });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cove.origin });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await cove?.close();
  });

  it('signs in through password and MFA, shows the request, and allows it with the keyboard', async () => {
    const { device, poll } = await startSignIn();
    expect((await poll()).type).toBe('AuthorizationPendingException');

    await page.goto(device.verificationUriComplete);
    expect(page.url()).toBe(
      `${cove.origin}/login?next=${encodeURIComponent(`/device?user_code=${device.userCode}`)}`,
    );
    const login = new LoginPage(page, cove.origin);
    await login.submitPassword('admin', adminPassword);
    await login.submitMfa(totpCode(totpSecret, Date.now()));
    await page.waitForURL(device.verificationUriComplete);

    const devicePage = new DevicePage(page);
    expect(await devicePage.request()).toEqual({
      title: 'Authorize request',
      client: 'botocore-client-cove',
      code: device.userCode,
    });
    expect(await page.locator('[data-testid=device-request]').innerText()).toContain(
      'asks to sign in to Cove as admin and get AWS credentials for your accounts from the command line.',
    );
    expect(await devicePage.focused()).toBe('device-title');
    await page.screenshot({ path: `${shots}/sso-device.png` });
    await page.keyboard.press('Tab');
    expect(await devicePage.focused()).toBe('device-allow');
    await page.keyboard.press('Enter');
    const outcome = await devicePage.outcome();
    expect(outcome.title).toBe('Request approved');
    expect(outcome.text).toContain(
      'Your command line is signed in. You can close this tab and go back to it.',
    );
    expect(await devicePage.focused()).toBe('device-title');

    await new Promise((resolve) => setTimeout(resolve, 1100));
    const token = await poll();
    expect(token.status).toBe(200);
    expect(token.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 3600 });
  });

  it('asks for the code when the link has none, and denies with the keyboard', async () => {
    const { device, poll } = await startSignIn();
    await page.goto(device.verificationUri);
    const devicePage = new DevicePage(page);
    await page.locator('[data-testid=device-code-input]').waitFor();
    expect(await devicePage.focused()).toBe('device-code-input');
    // A wrong code first: the page says so and keeps asking.
    await page.keyboard.type('bbbb bbbb');
    await page.keyboard.press('Enter');
    expect(await devicePage.alertText()).toContain('No waiting sign-in request has that code');
    await page.locator('[data-testid=device-code-input]').fill('');
    await page.locator('[data-testid=device-code-input]').focus();
    await page.keyboard.type(device.userCode.toLowerCase().replace('-', ''));
    await page.keyboard.press('Enter');
    expect((await devicePage.request()).code).toBe(device.userCode);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await devicePage.focused()).toBe('device-deny');
    await page.keyboard.press('Enter');
    const outcome = await devicePage.outcome();
    expect(outcome.title).toBe('Request denied');
    expect(outcome.text).toContain('Your command line was told the request was denied.');
    const denied = await poll();
    expect(denied).toMatchObject({
      status: 400,
      type: 'AccessDeniedException',
      body: { error: 'access_denied' },
    });
  });

  it('sends the browser back to the command line with a code (authorization code flow, PKCE)', async () => {
    // The CLI's loopback listener: it gets the code and shows its own page.
    const received: URL[] = [];
    const callback = createServer((request, response) => {
      received.push(new URL(request.url ?? '/', 'http://127.0.0.1'));
      response
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<h1>Signed in. You can close this window.</h1>');
    });
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    try {
      const redirectUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/oauth/callback`;
      const client = (
        await oidc('/client/register', { clientName: 'botocore-client-cove', clientType: 'public' })
      ).body as { clientId: string; clientSecret: string };
      const verifier = 'pkce-verifier-'.repeat(4);
      const authorize = `${cove.origin}/aws/oidc/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: client.clientId,
        redirect_uri: redirectUri,
        state: 'cli-state-1',
        code_challenge_method: 'S256',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        scopes: 'sso:account:access',
      }).toString()}`;
      await page.goto(authorize);
      const devicePage = new DevicePage(page);
      const shown = await devicePage.request();
      expect(shown.code).toBeNull();
      expect(await page.locator('[data-testid=device-request]').innerText()).toContain(
        'Allow it only if you just ran aws sso login (or a tool that signs in the same way) on this computer.',
      );
      await page.keyboard.press('Tab');
      expect(await devicePage.focused()).toBe('device-allow');
      await page.keyboard.press('Enter');
      await page.waitForURL((url) => url.href.startsWith(redirectUri));
      expect(await page.locator('h1').innerText()).toBe('Signed in. You can close this window.');
      const code = received[0]?.searchParams.get('code') ?? '';
      expect(received[0]?.searchParams.get('state')).toBe('cli-state-1');
      const token = await oidc('/token', {
        ...client,
        grantType: 'authorization_code',
        code,
        codeVerifier: verifier,
        redirectUri,
      });
      expect(token.status).toBe(200);
      expect(token.body).toMatchObject({ tokenType: 'Bearer' });
    } finally {
      await new Promise((resolve) => callback.close(resolve));
    }
  });

  it('shows the ~/.aws/config block on the portal and copies it', async () => {
    await page.goto(`${cove.origin}/`);
    const block = page.locator('[data-testid=laptop-config-text]');
    await block.waitFor();
    expect(await page.locator('[data-testid=laptop] h2').innerText()).toBe('Use from your laptop');
    const text = await block.inputValue();
    expect(text).toContain(`[sso-session cove]\nsso_start_url = ${cove.origin}/start\n`);
    expect(text).toContain(`sso_oidc =\n  endpoint_url = ${cove.origin}/aws/oidc\n`);
    expect(text).toContain(
      '[profile analytics-readonlyaccess]\nsso_session = cove\nsso_account_id = 210987654321\n',
    );
    await page.locator('[data-testid=laptop-config-copy]').focus();
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=laptop-config]').getByText('Copied').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(text);
    expect(pageErrors).toEqual([]);
  });
});
