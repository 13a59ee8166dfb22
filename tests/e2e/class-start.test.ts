/**
 * A class that starts together, in Chromium on the real engine. With one start at a time, four
 * students who open their shell at the same moment each see their place ("2 ahead of you", "you
 * are next") instead of a silent spinner, the place only goes down, and every one gets a prompt.
 * An administrator starts a group's environments ahead of a lesson from the Groups tab, with the
 * keyboard, and watches the count until done; the students' environments then run.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminPassword,
  desktop,
  launchChromium,
  phone,
  signedInContext,
  startCove,
  type CoveServer,
} from './cove-server.js';
import { LoginPage } from './models/login-page.js';
import { AdminPage } from './models/admin-page.js';
import { ShellPage } from './models/shell-page.js';

const region = 'us-east-1';
/** The server's default region: what the pre-start dialog offers first. */
const defaultRegion = 'eu-west-1';
const students = 4;

/** Every text the start-up overlay of the page showed, in order (a MutationObserver's record). */
async function recordProgress(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { progressSeen: string[] }).progressSeen = seen;
    new MutationObserver(() => {
      const overlay = document.querySelector('[data-testid=shell-progress]');
      const text = overlay && !(overlay as HTMLElement).hidden ? (overlay.textContent ?? '') : '';
      if (text && seen.at(-1) !== text) seen.push(text);
    }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

const progressSeen = (page: Page): Promise<string[]> =>
  page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);

describe('a class that starts together', () => {
  let cove: CoveServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const ownerIds: string[] = [];

  beforeAll(async () => {
    cove = await startCove({ logLevel: 'warn', sandbox: { maxConcurrentStarts: 1 } });
    browser = await launchChromium();
  });

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    const drivers = [region, defaultRegion].map((r) => cove?.app.environments.driver(r));
    await cove?.close();
    await Promise.all(
      drivers.flatMap((driver) =>
        ownerIds.map((ownerId) =>
          driver
            ?.remove({ ownerId, region: driver === drivers[0] ? region : defaultRegion })
            .catch(() => undefined),
        ),
      ),
    );
  });

  it('students who open their shell at once each see their place, which only goes down, then a prompt', async () => {
    const shells: ShellPage[] = [];
    for (let i = 0; i < students; i++) {
      const { userId, context } = await signedInContext(cove, browser, `pupil${i}-${process.pid}`, desktop);
      contexts.push(context);
      ownerIds.push(userId);
      const page = await context.newPage();
      await recordProgress(page);
      shells.push(new ShellPage(page, cove.origin));
    }
    await Promise.all(shells.map((shell) => shell.goto(region)));
    await Promise.all(shells.map((shell) => shell.waitForPrompt(120_000)));

    const seen = await Promise.all(shells.map((shell) => progressSeen(shell.page)));
    const places = seen.map((texts) =>
      texts.flatMap((text) => {
        const match = /— (\d+) ahead of you|— you are (next)/.exec(text);
        return match ? [match[2] ? 0 : Number(match[1])] : [];
      }),
    );
    // One start at a time for four: at least the last ones waited, and were told where they stood.
    expect(places.filter((p) => p.length > 0).length, JSON.stringify(seen)).toBeGreaterThanOrEqual(2);
    expect(
      seen.flat().some((text) => /ahead of you/.test(text)),
      JSON.stringify(seen),
    ).toBe(true);
    for (const p of places) for (let i = 1; i < p.length; i++) expect(p[i]).toBeLessThan(p[i - 1] as number);
    // Once the shell is there, the overlay is gone and the prompt is what they see.
    for (const shell of shells) {
      expect(await shell.page.locator('[data-testid=shell-progress]').isHidden()).toBe(true);
      expect(await shell.text()).toMatch(/\$$/);
    }
  }, 240_000);

  it('an administrator starts a group ahead of the lesson with the keyboard and sees it done', async () => {
    // The students' pages are gone and their environments stopped (as after the last lesson).
    for (const context of contexts.splice(0)) await context.close();
    await Promise.all(ownerIds.map((ownerId) => cove.app.environments.stop({ ownerId, region })));
    const group = await cove.app.directory.createGroup({ name: 'class-101' });
    await cove.app.directory.setGroupMembers(group.id, ownerIds);

    for (const viewport of [desktop, phone]) {
      const context = await browser.newContext({ viewport });
      contexts.push(context);
      const page = await context.newPage();
      const login = new LoginPage(page, cove.origin);
      await login.goto('/admin');
      await login.submitPassword('admin', adminPassword);
      await page.waitForURL(`${cove.origin}/admin`);
      const admin = new AdminPage(page, cove.origin);
      await admin.openTab('groups');
      const start = page.locator('tr[data-group="class-101"] button', { hasText: 'Start environments' });
      await start.focus();
      await page.keyboard.press('Enter');
      const dialog = page.locator('dialog[open]');
      await dialog.waitFor();
      expect(await dialog.locator('h2').textContent()).toBe('Start the environments of class-101');
      expect(await dialog.locator('[data-testid=prestart-region]').inputValue()).toBe(defaultRegion);
      // The dialog's action has the keyboard: Enter starts.
      await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe('Start now');
      await page.keyboard.press('Enter');
      const status = dialog.locator('[data-testid=prestart-status]');
      await expect
        .poll(() => status.textContent(), { timeout: 120_000 })
        .toBe(`Done: ${students} of ${students} started.`);
      // Then the keyboard is on Close, and Enter closes the dialog.
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Close');
      await page.keyboard.press('Enter');
      await dialog.waitFor({ state: 'detached' });
      const states = await Promise.all(
        ownerIds.map(
          async (ownerId) => (await cove.app.environments.status({ ownerId, region: defaultRegion })).state,
        ),
      );
      expect(states).toEqual(Array(students).fill('running'));
      await Promise.all(
        ownerIds.map((ownerId) => cove.app.environments.stop({ ownerId, region: defaultRegion })),
      );
      await context.close();
    }
  }, 300_000);
});
