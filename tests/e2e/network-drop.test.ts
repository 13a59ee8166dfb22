/**
 * F07 with a real network fault between a real Chromium and the real Cove process: a loopback
 * proxy (tests/helpers/fault-proxy.ts) carries every byte of the page, and Cove's `publicUrl` is
 * the proxy's origin. For 60 s the proxy silently drops every byte both ways and holds new
 * connections without a word (a dead route, a sleeping laptop's Wi-Fi): nothing closes by itself,
 * so the server's heartbeat must find the dead peer (its log says so) and so must the page's
 * (it shows "Reconnecting…" over the old screen and retries with growing delays, each attempt
 * given up when it does not open). The shell's output during the gap is kept by the server's
 * screen mirror, so after the route comes back the page shows it, in the same shell. Then a
 * network switch: every connection ends at once and the page comes back through a new one.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoveProcess, coveSite, disposeSite, signInAdmin, type CoveSite } from '../helpers/cove-process.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { launchChromium } from './cove-server.js';
import { ShellPage, type ConnectAttempt } from './models/shell-page.js';

const region = 'us-east-1';
/** The case's outage: real time, nothing simulated. */
const dropMs = 60_000;
/** Cove's default (`terminals.heartbeatS`): a dead peer is dropped within two intervals. */
const heartbeatS = 15;
const heartbeatLog = 'terminal socket missed its heartbeat';

describe('F07 the network drops under a real browser (real process, real Docker)', () => {
  let site: CoveSite;
  let cove: CoveProcess | undefined;
  let proxy: FaultProxy | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let shell: ShellPage;
  let ownerId = '';

  beforeAll(async () => {
    site = await coveSite({ homes: { enabled: false }, terminals: { heartbeatS } });
    proxy = await startFaultProxy({ host: '127.0.0.1', port: site.port });
    // The page's origin is the proxy's, so that is the origin Cove must expect.
    writeFileSync(
      join(site.dataDir, 'cove.config.json'),
      JSON.stringify({ ...site.config, publicUrl: proxy.url }, null, 2),
    );
    cove = await CoveProcess.start(site);
    const viaProxy: CoveSite = { ...site, origin: proxy.url };
    const { cookie, userId } = await signInAdmin(viaProxy);
    ownerId = userId;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    await context.addCookies([
      {
        name: 'cove_session',
        value: cookie.slice(cookie.indexOf('=') + 1),
        url: proxy.url,
        httpOnly: true,
        sameSite: 'Lax',
      },
    ]);
    shell = new ShellPage(await context.newPage(), proxy.url);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await proxy?.close();
    await disposeSite(site, cove ? [cove] : [], ownerId ? [ownerId] : []);
  });

  const connectionState = () => shell.page.getByTestId('connection-state').innerText();
  const unique = () => 1000 + Math.floor(Math.random() * 9000);
  const logged = (text: string, since: number) =>
    (cove as CoveProcess).logs.slice(since).some((l) => l.includes(text));
  /** The shell's PID, printed next to a marker only the shell computes. */
  const shellPid = async (): Promise<string> => {
    const n = unique();
    await shell.run(`echo "pid-$((${n}+1))-[$$]"`);
    const text = await shell.waitForText(new RegExp(`^pid-${n + 1}-\\[\\d+\\]$`, 'm'));
    return new RegExp(`^pid-${n + 1}-\\[(\\d+)\\]$`, 'm').exec(text)?.[1] ?? '';
  };

  it(
    'F07 60 s of dropped TCP: both ends notice, the page backs off exponentially, then the same shell with the output printed meanwhile',
    { timeout: 150_000 },
    async () => {
      const fault = proxy as FaultProxy;
      await shell.goto(region);
      await shell.waitForPrompt(60_000);
      const pid = await shellPid();
      expect(pid).toMatch(/^\d+$/);
      const n = unique();
      // One line before the server notices the dead peer, one after: both only reach its mirror.
      await shell.run(`sleep 20; echo gap-a-$((${n}+1)); sleep 25; echo gap-b-$((${n}+2))`);
      await shell.waitForText(/sleep 25; echo gap-b/);
      await shell.page.waitForTimeout(500);
      const logsBefore = (cove as CoveProcess).logs.length;
      const acceptedBefore = fault.acceptedAt.length;

      const droppedAt = Date.now();
      fault.blackhole();
      let pageNoticedAt: number | undefined;
      let serverNoticedAt: number | undefined;
      let screenKept = true;
      while (Date.now() - droppedAt < dropMs) {
        if (pageNoticedAt === undefined && (await connectionState()) === 'Reconnecting…') {
          pageNoticedAt = Date.now();
          // The old screen stays while reconnecting: no blank terminal.
          screenKept = /sleep 25; echo gap-b/.test(await shell.text());
        }
        if (serverNoticedAt === undefined && logged(heartbeatLog, logsBefore)) serverNoticedAt = Date.now();
        await shell.page.waitForTimeout(200);
      }
      const stateAtEnd = await connectionState();
      const attemptsInGap = (await shell.attempts()).filter((a) => a.startedAt >= droppedAt);
      const acceptedInGap = fault.acceptedAt.slice(acceptedBefore).length;
      const restoredAt = Date.now();
      fault.restore();

      const pageMs = (pageNoticedAt ?? Infinity) - droppedAt;
      const serverMs = (serverNoticedAt ?? Infinity) - droppedAt;
      const delays = attemptsInGap.map((a) => a.retryInMs).filter((d): d is number => d !== undefined);
      process.stdout.write(
        `F07: page noticed after ${pageMs} ms, server after ${serverMs} ms; ${attemptsInGap.length} attempts in the gap, ` +
          `backoff ${delays.join(', ')} ms; the proxy accepted ${acceptedInGap} connections\n`,
      );
      // Both ends found the dead connection inside the gap: the page by its pings (5 s, 15 s
      // without a pong), the server by its heartbeat (two intervals at most, plus scheduling slack).
      expect(pageNoticedAt, 'the page showed Reconnecting… during the drop').toBeDefined();
      expect(screenKept).toBe(true);
      expect(serverNoticedAt, `the server logged "${heartbeatLog}" during the drop`).toBeDefined();
      expect(serverMs).toBeLessThan(2 * heartbeatS * 1000 + 5_000);
      expect(stateAtEnd).toBe('Reconnecting…');

      // The attempts in the gap: none opened, each given up by the page, each retry waited longer.
      expect(attemptsInGap.length).toBeGreaterThanOrEqual(3);
      const ended = attemptsInGap.filter((a): a is Required<ConnectAttempt> => a.retryInMs !== undefined);
      expect(ended.length).toBeGreaterThanOrEqual(3);
      for (const attempt of ended) expect(attempt.openedAt).toBeUndefined();
      for (let i = 1; i < ended.length; i++) {
        const [before, after] = [
          ended[i - 1] as Required<ConnectAttempt>,
          ended[i] as Required<ConnectAttempt>,
        ];
        // Jitter is ±25 %, so a doubling is never less than 1.2 times the previous delay.
        expect(after.retryInMs).toBeGreaterThanOrEqual(before.retryInMs * 1.2);
      }
      for (let i = 1; i < attemptsInGap.length; i++) {
        const [before, after] = [attemptsInGap[i - 1] as ConnectAttempt, attemptsInGap[i] as ConnectAttempt];
        // The page really waited its delay after each failure before the next try.
        expect(after.startedAt - (before.failedAt ?? Infinity)).toBeGreaterThanOrEqual(
          (before.retryInMs ?? Infinity) - 50,
        );
      }
      // Every attempt was a real TCP connection the route swallowed.
      expect(acceptedInGap).toBeGreaterThanOrEqual(attemptsInGap.length);

      // Back on the network: the same shell, with what it printed while the page could not see it.
      const text = await shell.waitForText(new RegExp(`^gap-b-${n + 2}$`, 'm'), 60_000);
      expect(text).toMatch(new RegExp(`^gap-a-${n + 1}$`, 'm'));
      process.stdout.write(`F07: the page was back ${Date.now() - restoredAt} ms after the route returned\n`);
      expect(await connectionState()).toBe('Connected');
      expect(await shellPid()).toBe(pid);
    },
  );

  it('F07 a network switch: every connection ends at once and the page comes back through a new one to the same shell', async () => {
    const fault = proxy as FaultProxy;
    const pid = await shellPid();
    const n = unique();
    await shell.run(`sleep 3; echo switched-$((${n}+1))`);
    await shell.waitForText(/sleep 3; echo switched/);
    const acceptedBefore = fault.acceptedAt.length;
    const attemptsBefore = (await shell.attempts()).length;
    const cutAt = Date.now();
    // The old network is gone (its connections end) and the next connection comes from a new one.
    fault.cutAll();

    await shell.waitForText(new RegExp(`^switched-${n + 1}$`, 'm'), 30_000);
    const after = (await shell.attempts()).slice(attemptsBefore);
    expect(after.length).toBeGreaterThanOrEqual(1);
    expect(after.at(-1)?.openedAt).toBeGreaterThanOrEqual(cutAt);
    expect(fault.acceptedAt.slice(acceptedBefore).length).toBeGreaterThanOrEqual(1);
    expect(await connectionState()).toBe('Connected');
    expect(await shellPid()).toBe(pid);
  });
});
