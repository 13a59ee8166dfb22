/**
 * Command line access in a real Chromium against a real Cove whose STS endpoint is the local STS,
 * set by config alone (`sts.endpoint`; the server's own AWS identity from the SDK's default chain,
 * here environment variables): the panel shows exactly what STS issued to this user as bash,
 * PowerShell and credentials-file text, copies it, shows the expiry, and shows STS's refusals and
 * notices. Screenshot: /tmp/cove-shots/cli-access.png.
 */
import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { launchChromium, signedInContext, startCove, type CoveServer } from './cove-server.js';
import { LOCAL_STS_CALLER, startLocalSts, type LocalSts, type LocalStsIssued } from '../helpers/local-sts.js';

const shots = '/tmp/cove-shots';
const accountId = '210987654321';

/** The panel, as a user sees it. */
class CliAccessPanel {
  constructor(private readonly page: Page) {}

  async open(permissionSet: string): Promise<void> {
    await this.page
      .locator(
        `[data-account-id="${accountId}"] [data-permission-set="${permissionSet}"] [data-testid=cli-access]`,
      )
      .click();
    await this.page
      .locator('[data-testid=cli-dialog] [data-testid=cli-expiry], [data-testid=cli-error]')
      .first()
      .waitFor();
  }

  text(block: 'bash' | 'powershell' | 'file'): Promise<string> {
    return this.page.locator(`[data-testid=cli-${block}-text]`).inputValue();
  }

  async copy(block: 'bash' | 'powershell' | 'file'): Promise<string> {
    await this.page.locator(`[data-testid=cli-${block}-copy]`).click();
    await this.page.locator(`[data-testid=cli-${block}]`).getByText('Copied').waitFor();
    return this.page.evaluate(() => navigator.clipboard.readText());
  }

  expiry(): Promise<string> {
    return this.page.locator('[data-testid=cli-expiry]').innerText();
  }

  error(): Promise<string> {
    return this.page.locator('[data-testid=cli-error]').innerText();
  }

  notice(): Promise<string> {
    return this.page.locator('[data-testid=cli-notice]').innerText();
  }

  async close(): Promise<void> {
    await this.page.locator('[data-testid=cli-dialog]').getByRole('button', { name: 'Close' }).click();
    await this.page.locator('[data-testid=cli-dialog]').waitFor({ state: 'detached' });
  }
}

describe('command line access on the portal', () => {
  let sts: LocalSts;
  let cove: CoveServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let panel: CliAccessPanel;
  let userId = '';
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    sts = await startLocalSts();
    // The SDK's default chain reads these itself; Cove's config only names the endpoint.
    vi.stubEnv('AWS_ACCESS_KEY_ID', LOCAL_STS_CALLER.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', LOCAL_STS_CALLER.secretAccessKey);
    cove = await startCove({ sts: { endpoint: sts.endpoint, region: 'us-east-1' } });
    const { directory } = cove.app;
    await directory.createAccount({ accountId, name: 'Analytics' });
    await directory.createPermissionSet({ name: 'DataEngineer', sessionDurationS: 8 * 3600 });
    await directory.createPermissionSet({ name: 'ShortRole', sessionDurationS: 4 * 3600 });
    await directory.createPermissionSet({ name: 'Locked', sessionDurationS: 3600 });
    sts.setMaxDuration(`arn:aws:iam::${accountId}:role/Cove-ShortRole`, 3600);
    sts.denyRole(`arn:aws:iam::${accountId}:role/Cove-Locked`);
    browser = await launchChromium();
    const signedIn = await signedInContext(cove, browser, 'erin', { width: 1200, height: 900 });
    context = signedIn.context;
    userId = signedIn.userId;
    for (const permissionSet of ['DataEngineer', 'ShortRole', 'Locked'])
      await directory.createAssignment({
        principalType: 'user',
        principalId: userId,
        accountId,
        permissionSet,
      });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cove.origin });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // The 403 and 503 of the refusal tests are expected; Chromium logs every non-2xx fetch.
      const expected = /^Failed to load resource: .* status of (403|503) /.test(message.text());
      if (message.type() === 'error' && !expected) pageErrors.push(message.text());
    });
    panel = new CliAccessPanel(page);
    await page.goto(`${cove.origin}/`);
    await page.locator('[data-testid=accounts]').waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    await cove?.close();
    await sts?.close();
    vi.unstubAllEnvs();
  });

  let issued: LocalStsIssued;

  it('shows what STS issued to this user as bash, PowerShell and a credentials file block', async () => {
    await panel.open('DataEngineer');
    const mine = [...sts.issued.values()].filter((c) => c.roleSessionName === 'erin');
    expect(mine).toHaveLength(1);
    issued = mine[0] as LocalStsIssued;
    expect(issued.roleArn).toBe(`arn:aws:iam::${accountId}:role/Cove-DataEngineer`);
    expect(issued.durationSeconds).toBe(8 * 3600);

    expect(await panel.text('bash')).toBe(
      [
        `export AWS_ACCESS_KEY_ID="${issued.accessKeyId}"`,
        `export AWS_SECRET_ACCESS_KEY="${issued.secretAccessKey}"`,
        `export AWS_SESSION_TOKEN="${issued.sessionToken}"`,
        'export AWS_REGION="eu-west-1"',
      ].join('\n'),
    );
    expect(await panel.text('powershell')).toBe(
      [
        `$Env:AWS_ACCESS_KEY_ID="${issued.accessKeyId}"`,
        `$Env:AWS_SECRET_ACCESS_KEY="${issued.secretAccessKey}"`,
        `$Env:AWS_SESSION_TOKEN="${issued.sessionToken}"`,
        '$Env:AWS_REGION="eu-west-1"',
      ].join('\n'),
    );
    expect(await panel.text('file')).toBe(
      [
        `[${accountId}_DataEngineer]`,
        `aws_access_key_id=${issued.accessKeyId}`,
        `aws_secret_access_key=${issued.secretAccessKey}`,
        `aws_session_token=${issued.sessionToken}`,
      ].join('\n'),
    );
    await page.screenshot({ path: `${shots}/cli-access.png` });
  });

  it('shows the expiry in local time and how long is left', async () => {
    const localTime = await page.evaluate(
      (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }),
      issued.expiration.toISOString(),
    );
    expect(await panel.expiry()).toMatch(
      new RegExp(
        `^These credentials expire ${localTime.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(in (7 h 59|8 h 0) min\\)\\.$`,
      ),
    );
  });

  it('copies each block exactly', async () => {
    expect(await panel.copy('bash')).toBe(await panel.text('bash'));
    expect(await panel.copy('file')).toBe(await panel.text('file'));
    expect(await panel.copy('powershell')).toContain(`$Env:AWS_SESSION_TOKEN="${issued.sessionToken}"`);
  });

  it('keeps secrets out of the URL, the title and storage', async () => {
    const where = await page.evaluate(() => ({
      url: location.href,
      title: document.title,
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
    }));
    for (const secret of [issued.accessKeyId, issued.secretAccessKey, issued.sessionToken])
      expect(JSON.stringify(where)).not.toContain(secret);
    await panel.close();
    expect(await page.locator('[data-testid=cli-dialog] textarea').count()).toBe(0);
  });

  it('a role that allows 1 h: the panel says so and the credentials last 1 h', async () => {
    await panel.open('ShortRole');
    expect(await panel.notice()).toBe(
      `The role Cove-ShortRole in account ${accountId} allows at most 1 h: these credentials last 1 h, not 4 h.`,
    );
    expect(await panel.expiry()).toMatch(/\(in (59 min|1 h 0 min)\)\.$/);
    await panel.close();
  });

  it('STS refusing the role: a clear error in the panel, no credentials shown', async () => {
    await panel.open('Locked');
    expect(await panel.error()).toMatch(
      /^could not assume role Cove-Locked in account 210987654321: AccessDenied\b/,
    );
    expect(await page.locator('[data-testid=cli-dialog] textarea').count()).toBe(0);
    await panel.close();
  });

  it('STS not answering: the 503 message in the panel', async () => {
    await cove.app.directory.createPermissionSet({ name: 'Slow', sessionDurationS: 3600 });
    await cove.app.directory.createAssignment({
      principalType: 'user',
      principalId: userId,
      accountId,
      permissionSet: 'Slow',
    });
    await page.reload();
    await page.locator('[data-testid=accounts]').waitFor();
    sts.failNext(20, 500);
    try {
      await panel.open('Slow');
      expect(await panel.error()).toBe(
        'AWS credentials are unavailable right now (STS did not answer). Your shell still works; try again in a minute.',
      );
    } finally {
      sts.failNext(0);
    }
    await panel.close();
  });

  it('no page errors, and the server log holds none of the issued secrets', () => {
    expect(pageErrors).toEqual([]);
    const log = cove.logs.join('');
    for (const c of sts.issued.values())
      for (const secret of [c.accessKeyId, c.secretAccessKey, c.sessionToken])
        expect(log).not.toContain(secret);
  });
});
