/**
 * The user's container killed through the Docker API while the shell page is open (as an OOM kill
 * of the whole environment or a crash would): the page says "Your environment stopped" and offers
 * Restart; Restart gives a working prompt with the loop-mounted home as it was. Real Chromium,
 * real Cove, real Docker; the container and the home are removed afterwards.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoopHomeVolumes } from '../../sandbox/home-volumes.js';
import { launchChromium, signedInContext, startCove, type CoveServer } from './cove-server.js';
import { ShellPage } from './models/shell-page.js';

const run = promisify(execFile);
const region = 'us-east-1';
const MiB = 1024 ** 2;

describe('shell page when the environment stops', () => {
  let cove: CoveServer;
  let browser: Browser;
  let context: BrowserContext;
  let shell: ShellPage;
  let ownerId: string;
  let homesRoot: string;
  let volumes: LoopHomeVolumes;

  beforeAll(async () => {
    homesRoot = mkdtempSync(join(tmpdir(), 'cove-e2e-stopped-homes-'));
    volumes = new LoopHomeVolumes({ root: homesRoot, reserveBytes: 0 });
    cove = await startCove({ logLevel: 'warn', homes: { sizeBytes: 64 * MiB } }, () => ({
      homeVolumes: volumes,
    }));
    browser = await launchChromium();
    ({ userId: ownerId, context } = await signedInContext(
      cove,
      browser,
      `stopped-e2e-${process.pid}-${Date.now() % 100000}`,
    ));
    shell = new ShellPage(await context.newPage(), cove.origin);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    const driver = cove?.app.environments.driver(region);
    await cove?.close();
    await driver?.remove({ ownerId, region }).catch(() => undefined);
    for (const home of (await volumes?.list()) ?? []) await volumes.delete(home).catch(() => undefined);
    if (homesRoot) rmSync(homesRoot, { recursive: true, force: true });
  });

  it('F04 says "Your environment stopped", and Restart gives a prompt with the home kept', async () => {
    await shell.goto(region);
    await shell.waitForPrompt(30_000);
    await shell.run('echo kept-$((6*7)) > ~/kept.txt; echo wrote-$((1+1))');
    await shell.waitForText(/^wrote-2$/m);

    const { stdout } = await run('/usr/bin/docker', ['ps', '-q', '--filter', `label=cove.owner=${ownerId}`]);
    const ids = stdout.split('\n').filter(Boolean);
    expect(ids).toHaveLength(1);
    await run('/usr/bin/docker', ['kill', ...ids]);

    const gone = shell.page.getByTestId('shell-gone');
    await gone.waitFor({ timeout: 20_000 });
    expect(await gone.innerText()).toContain('Your environment stopped');
    const restart = shell.page.getByTestId('restart-stopped');
    expect(await restart.innerText()).toBe('Restart');

    await restart.click();
    await shell.waitForPrompt(30_000);
    expect(await shell.tabCount()).toBe(1);
    await shell.run('echo "home-[$(cat ~/kept.txt)]"');
    await shell.waitForText(/^home-\[kept-42\]$/m);
  });
});
