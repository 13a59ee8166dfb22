/**
 * The set-up the shell-page tests share: a real Cove, a real Chromium, a new signed-in user and a
 * shell page object, optionally with real loop-mounted homes of a given size in a temp dir.
 * `close()` removes the user's container and every home made here, also after a failure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { LoopHomeVolumes } from '../../sandbox/homes/home-volumes.js';
import { launchChromium, signedInContext, startCove, type CoveServer } from './cove-server.js';
import { ShellPage } from './models/shell-page.js';

export const shellRegion = 'us-east-1';

export interface ShellFixture {
  readonly cove: CoveServer;
  readonly browser: Browser;
  readonly context: BrowserContext;
  readonly shell: ShellPage;
  readonly ownerId: string;
  /** Only with `loopHomeBytes`. */
  readonly volumes: LoopHomeVolumes | undefined;
  close(): Promise<void>;
}

export interface ShellFixtureOptions {
  /** The user name's prefix; the process id and a run number are appended. */
  readonly user: string;
  /** Real loop-mounted homes of this size; without it the config decides (`homes` in `config`). */
  readonly loopHomeBytes?: number;
  readonly config?: Record<string, unknown>;
}

export async function openShellFixture(options: ShellFixtureOptions): Promise<ShellFixture> {
  const homesRoot = options.loopHomeBytes ? mkdtempSync(join(tmpdir(), 'cove-e2e-homes-')) : undefined;
  const volumes = homesRoot ? new LoopHomeVolumes({ root: homesRoot, reserveBytes: 0 }) : undefined;
  let cove: CoveServer | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let ownerId: string | undefined;
  const close = async (): Promise<void> => {
    await context?.close();
    await browser?.close();
    const driver = cove?.app.environments.driver(shellRegion);
    await cove?.close();
    if (ownerId) await driver?.remove({ ownerId, region: shellRegion }).catch(() => undefined);
    for (const home of (await volumes?.list()) ?? []) await volumes?.delete(home).catch(() => undefined);
    if (homesRoot) rmSync(homesRoot, { recursive: true, force: true });
  };
  try {
    const homes = options.loopHomeBytes ? { homes: { sizeBytes: options.loopHomeBytes } } : {};
    cove = await startCove({ logLevel: 'warn', ...homes, ...options.config }, () =>
      volumes ? { homeVolumes: volumes } : {},
    );
    browser = await launchChromium();
    const username = `${options.user}-${process.pid}-${Date.now() % 100000}`;
    ({ userId: ownerId, context } = await signedInContext(cove, browser, username));
    const shell = new ShellPage(await context.newPage(), cove.origin);
    return { cove, browser, context, shell, ownerId, volumes, close };
  } catch (error) {
    await close();
    throw error;
  }
}
