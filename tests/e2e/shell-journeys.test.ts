/**
 * The shell page walked the way a person uses it, in a real Chromium against a real Cove, real
 * containers and a local STS: every combination of {a shell for an account × permission set, a
 * shell without one} × {"+", switch tabs, close a tab, reload, a second window, the last tab
 * closed, sign out in another window}, a keyboard-only walk from the sign-in page to an upload,
 * narrow and wide windows, and the first fit. Each step asserts what the person sees: the screen
 * text, which shell answered (its PID), and where the keyboard focus is. A failing step leaves a
 * screenshot in /tmp/cove-shots/journeys-*.png.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { launchChromium, signedInContext, startCove, type CoveServer } from './cove-server.js';
import { ShellPage } from './models/shell-page.js';
import { LOCAL_STS_CALLER, startLocalSts, type LocalSts } from '../helpers/local-sts.js';

const shots = '/tmp/cove-shots';
const region = 'us-east-1';
const accountId = '314159265358';
const permissionSet = 'Developer';

interface Binding {
  readonly name: string;
  readonly query?: { account: string; permissionSet: string };
  /** What the status line names as the identity. */
  readonly identity: string;
  /** What the tab labels start with. */
  readonly label: string;
}

const bindings: readonly Binding[] = [
  {
    name: 'a shell for an account × permission set',
    query: { account: accountId, permissionSet },
    identity: `${accountId} / ${permissionSet}`,
    label: permissionSet,
  },
  { name: 'a shell without an account', identity: 'no AWS credentials', label: 'shell' },
];

describe('shell journeys', () => {
  let sts: LocalSts;
  let cove: CoveServer;
  let browser: Browser;
  let context: BrowserContext;
  let userId = '';
  const pages: Page[] = [];

  const track = async (page: Page): Promise<Page> => {
    pages.push(page);
    return page;
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    sts = await startLocalSts();
    vi.stubEnv('AWS_ACCESS_KEY_ID', LOCAL_STS_CALLER.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', LOCAL_STS_CALLER.secretAccessKey);
    cove = await startCove({ logLevel: 'warn', sts: { endpoint: sts.endpoint, region: 'us-east-1' } });
    const { directory } = cove.app;
    await directory.createAccount({ accountId, name: 'Journeys' });
    await directory.createPermissionSet({ name: permissionSet, sessionDurationS: 3600 });
    browser = await launchChromium();
    const signedIn = await signedInContext(cove, browser, `journey-${process.pid}`, {
      width: 1280,
      height: 800,
    });
    context = signedIn.context;
    userId = signedIn.userId;
    await directory.createAssignment({
      principalType: 'user',
      principalId: userId,
      accountId,
      permissionSet,
    });
  });

  afterEach(async (test) => {
    if (test.task.result?.state !== 'fail') return;
    const name = test.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 80);
    for (const [i, page] of pages.entries())
      if (!page.isClosed())
        await page.screenshot({ path: join(shots, `journeys-${name}-${i}.png`) }).catch(() => undefined);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    const driver = cove?.app.environments.driver(region);
    await cove?.close();
    if (userId) await driver?.remove({ ownerId: userId, region }).catch(() => undefined);
    await sts?.close();
    vi.unstubAllEnvs();
  });

  for (const binding of bindings) {
    describe(binding.name, () => {
      let shell: ShellPage;
      let firstPid = '';

      beforeAll(async () => {
        // Whatever an earlier binding left open here must not be taken for this one's terminals.
        for (const t of cove.app.terminals.list(userId, region)) cove.app.terminals.close(userId, t.id);
        shell = new ShellPage(await track(await context.newPage()), cove.origin);
        await shell.goto(region, binding.query);
        await shell.waitForPrompt(60_000);
      });

      afterAll(async () => {
        await shell?.page.close();
      });

      it('opens with the prompt, the identity in the status line, and the keyboard in the terminal', async () => {
        expect(await shell.statusText()).toContain(binding.identity);
        await shell.waitForTerminalFocus();
        // Typed straight away, without clicking the terminal first.
        firstPid = await shell.shellPid('first');
        expect(await shell.tabLabels()).toEqual([expect.stringMatching(new RegExp(`^${binding.label} 1`))]);
      });

      it('"+" opens a new shell of the same kind that has the keyboard; Enter runs a command there', async () => {
        const firstId = await shell.activeTerminalId();
        await shell.newTab();
        expect(await shell.tabCount()).toBe(2);
        await shell.waitForPrompt(30_000);
        await shell.waitForTerminalFocus();
        expect(await shell.activeTerminalId()).not.toBe(firstId);
        // The new tab is its own shell: not tab 1's screen, not tab 1's process.
        expect(await shell.text()).not.toContain(`first-${firstPid}`);
        const secondPid = await shell.shellPid('second');
        expect(secondPid).not.toBe(firstPid);
        // Enter went to the shell, not to the "+" button: still two tabs.
        expect(await shell.tabCount()).toBe(2);
        expect(await shell.statusText()).toContain(binding.identity);
        const terminals = cove.app.terminals.list(userId, region);
        expect(terminals).toHaveLength(2);
        expect(terminals.every((t) => t.attached)).toBe(true);
      });

      it('switching tabs shows each shell its own screen and moves the keyboard with it', async () => {
        await shell.switchTab(0);
        await shell.waitForTerminalFocus();
        expect(await shell.text()).toContain(`first-${firstPid}`);
        expect(await shell.text()).not.toMatch(/^second-\d+$/m);
        expect(await shell.shellPid('again')).toBe(firstPid);
        // And by keyboard: Alt+Shift+→ goes to the next tab, Alt+Shift+← back.
        await shell.page.keyboard.press('Alt+Shift+ArrowRight');
        await shell.waitForText(/^second-\d+$/m);
        await shell.waitForTerminalFocus();
        expect(await shell.shellPid('keyed')).not.toBe(firstPid);
        await shell.page.keyboard.press('Alt+Shift+ArrowLeft');
        await shell.waitForText(new RegExp(`^again-${firstPid}$`, 'm'));
        await shell.waitForTerminalFocus();
      });

      it('closing the second tab leaves the first shell working, with the keyboard', async () => {
        await shell.closeTab(1);
        expect(await shell.tabCount()).toBe(1);
        await shell.waitForTerminalFocus();
        expect(await shell.shellPid('after-close')).toBe(firstPid);
        expect(cove.app.terminals.list(userId, region)).toHaveLength(1);
      });

      it('a reload gives back the same shell and its screen', async () => {
        await shell.page.reload();
        await shell.waitForText(new RegExp(`^after-close-${firstPid}$`, 'm'), 30_000);
        expect(await shell.tabCount()).toBe(1);
        await shell.waitForTerminalFocus();
        expect(await shell.shellPid('reloaded')).toBe(firstPid);
        expect(await shell.statusText()).toContain(binding.identity);
      });

      it('a second window opens its own shell and does not take over the first', async () => {
        const second = new ShellPage(await track(await context.newPage()), cove.origin);
        await second.goto(region, binding.query);
        await second.waitForPrompt(30_000);
        const otherPid = await second.shellPid('window');
        expect(otherPid).not.toBe(firstPid);
        expect(await second.statusText()).toContain(binding.identity);
        // The first window's shell still answers there, and only there.
        await shell.page.bringToFront();
        await shell.run('echo still-$$');
        await shell.waitForText(new RegExp(`^still-${firstPid}$`, 'm'));
        expect(await second.text()).not.toContain(`still-${firstPid}`);
        await second.page.close();
      });

      it('closing the last tab shows "No open terminals" with a way on, by keyboard too', async () => {
        while ((await shell.tabCount()) > 0) await shell.closeTab(0);
        const empty = shell.page.getByTestId('shell-empty');
        await empty.waitFor();
        expect(await empty.innerText()).toContain('No open terminals');
        expect(await empty.getByRole('link', { name: 'Back to the portal' }).getAttribute('href')).toBe('/');
        // The keyboard is on "Open a terminal": Enter opens one, and the keyboard goes into it.
        expect(await shell.focusDescription()).toContain('Open a terminal');
        await shell.page.keyboard.press('Enter');
        await shell.waitForPrompt(30_000);
        expect(await empty.isHidden()).toBe(true);
        await shell.waitForTerminalFocus();
        expect(await shell.statusText()).toContain(binding.identity);
        await shell.shellPid('fresh');
      });
    });
  }

  it('signing out in another window sends the shell page to the sign-in page', async () => {
    const shell = new ShellPage(await track(await context.newPage()), cove.origin);
    await shell.goto(region);
    await shell.waitForPrompt(30_000);
    const other = await track(await context.newPage());
    await other.goto(`${cove.origin}/`);
    await other.getByTestId('sign-out').click();
    await other.waitForURL(/\/login/);
    await shell.page.waitForURL(/\/login\?next=%2Fshell%2Fus-east-1/, { timeout: 30_000 });
    await shell.page.locator('#login-form').waitFor();
    await shell.page.close();
    await other.close();
  });
});

describe('shell journeys by keyboard, on narrow and wide windows', () => {
  let sts: LocalSts;
  let cove: CoveServer;
  let browser: Browser;
  let dir = '';
  const owners: string[] = [];

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'cove-journeys-'));
    sts = await startLocalSts();
    vi.stubEnv('AWS_ACCESS_KEY_ID', LOCAL_STS_CALLER.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', LOCAL_STS_CALLER.secretAccessKey);
    cove = await startCove({ logLevel: 'warn', sts: { endpoint: sts.endpoint, region: 'us-east-1' } });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    const driver = cove?.app.environments.driver(region);
    await cove?.close();
    for (const ownerId of owners) await driver?.remove({ ownerId, region }).catch(() => undefined);
    await sts?.close();
    rmSync(dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });

  /** Presses Tab until `target` has the focus (at most 40 times), as a keyboard user does. */
  async function tabTo(page: Page, matches: () => boolean): Promise<void> {
    for (let i = 0; i < 40; i++) {
      if (await page.evaluate(matches)) return;
      await page.keyboard.press('Tab');
    }
    throw new Error('Tab never reached the control');
  }

  it('keyboard only: sign in, open a shell, type, new tab, switch tab, upload through Actions', async () => {
    const username = `keys-${process.pid}`;
    const password = 'keyboard-journey-pw-1';
    const { user } = await cove.app.directory.createUser({ username, password });
    owners.push(user.id);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    try {
      await page.goto(`${cove.origin}/login`);
      await page.locator('#login-form').waitFor();
      // The user-name field has the focus when the page opens.
      await page.keyboard.type(username);
      await page.keyboard.press('Tab');
      await page.keyboard.type(password);
      await page.keyboard.press('Enter');
      await page.waitForURL(`${cove.origin}/`);
      // The portal: Tab to "Open shell" without credentials, Enter.
      await tabTo(
        page,
        () =>
          document.activeElement?.getAttribute('data-testid') === 'open-plain-shell' &&
          document.activeElement.getAttribute('data-region') === 'us-east-1',
      );
      // The link opens the shell in a new browser tab.
      const opened = context.waitForEvent('page');
      await page.keyboard.press('Enter');
      const shellPage = await opened;
      const shell = new ShellPage(shellPage, cove.origin);
      await shell.waitForPrompt(60_000);
      await shell.waitForTerminalFocus();
      const firstPid = await shell.shellPid('keys');
      // New tab: Alt+Shift+T.
      await shellPage.keyboard.press('Alt+Shift+T');
      await shellPage.waitForFunction(() => window.coveShell?.tabCount() === 2);
      await shell.waitForPrompt(30_000);
      await shell.waitForTerminalFocus();
      expect(await shell.shellPid('keys-two')).not.toBe(firstPid);
      // Back to the first: Alt+Shift+←.
      await shellPage.keyboard.press('Alt+Shift+ArrowLeft');
      await shell.waitForText(new RegExp(`^keys-${firstPid}$`, 'm'));
      await shell.waitForTerminalFocus();
      // Upload through Actions: Alt+Shift+A opens the menu on its first item, Upload file….
      const file = join(dir, 'by-keyboard.txt');
      writeFileSync(file, 'typed, not clicked\n');
      await shellPage.keyboard.press('Alt+Shift+A');
      expect(await shell.focusDescription()).toContain('Upload file');
      await shellPage.keyboard.press('Enter');
      await shellPage.getByTestId('upload-files').waitFor();
      const chooser = shellPage.waitForEvent('filechooser');
      await tabTo(shellPage, () => document.activeElement?.getAttribute('data-testid') === 'upload-files');
      await shellPage.keyboard.press('Enter');
      await (await chooser).setFiles(file);
      await tabTo(shellPage, () => document.activeElement?.getAttribute('data-testid') === 'upload-start');
      await shellPage.keyboard.press('Enter');
      await shellPage
        .getByTestId('transfer-row')
        .filter({ hasText: 'by-keyboard.txt' })
        .locator('[data-state=done], [data-testid=transfer-status]')
        .first()
        .waitFor();
      await shellPage.waitForFunction(() =>
        Array.from(document.querySelectorAll('[data-testid=transfer-row]')).some(
          (r) => r.getAttribute('data-state') === 'done',
        ),
      );
      // The dialog closed: the keyboard is back in the terminal, and the file is in the home.
      await shell.waitForTerminalFocus();
      await shell.typeLine('cat ~/by-keyboard.txt');
      await shell.waitForText(/^typed, not clicked$/m);
    } catch (error) {
      for (const [i, p] of context.pages().entries())
        await p.screenshot({ path: join(shots, `journeys-keyboard-${i}.png`) }).catch(() => undefined);
      throw error;
    } finally {
      await context.close();
    }
  });

  for (const viewport of [
    { width: 420, height: 780 },
    { width: 1920, height: 1080 },
  ]) {
    it(`at ${viewport.width} px the status line, the user, the tabs and Actions are all visible, none over another`, async () => {
      const { userId, context } = await signedInContext(
        cove,
        browser,
        `wide-${viewport.width}-${process.pid}`,
        viewport,
      );
      owners.push(userId);
      const shell = new ShellPage(await context.newPage(), cove.origin);
      try {
        await shell.goto(region);
        await shell.waitForPrompt(60_000);
        const boxes = await shell.page.evaluate(() => {
          const box = (el: Element | null) => {
            if (!el) return null;
            const r = el.getBoundingClientRect();
            const style = getComputedStyle(el);
            // What a person sees at the middle of the element: itself, not something drawn over it.
            const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
            return {
              x: r.x,
              y: r.y,
              width: r.width,
              height: r.height,
              onTop: !!top && (el === top || el.contains(top)),
              visible:
                style.display !== 'none' && style.visibility !== 'hidden' && r.width > 0 && r.height > 0,
              lineHeight: parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.3,
              text: (el as HTMLElement).innerText,
            };
          };
          // The items a person can see: a hidden one (e.g. "recorded" when not) reads its text
          // through innerText all the same.
          const items = Array.from(document.querySelectorAll('.shell-status > .shell-status-item'))
            .filter((el) => !(el as HTMLElement).hidden && (el as HTMLElement).innerText.trim() !== '')
            .map(box);
          return {
            viewport: { width: window.innerWidth, height: window.innerHeight },
            items,
            user: box(document.querySelector('[data-testid=current-user]')),
            signOut: box(document.querySelector('[data-testid=sign-out]')),
            actions: box(document.querySelector('[data-testid=actions]')),
            add: box(document.querySelector('[data-testid=new-tab]')),
            terminal: box(document.querySelector('.shell-tab-panel:not([hidden]) .xterm')),
          };
        });
        await shell.page.screenshot({ path: join(shots, `journeys-${viewport.width}.png`) });
        const within = (b: { x: number; y: number; width: number; height: number }) =>
          b.x >= 0 &&
          b.y >= 0 &&
          b.x + b.width <= boxes.viewport.width + 0.5 &&
          b.y + b.height <= boxes.viewport.height + 0.5;
        const overlap = (a: { x: number; y: number; width: number; height: number }, b: typeof a) =>
          a.x < b.x + b.width - 0.5 &&
          b.x < a.x + a.width - 0.5 &&
          a.y < b.y + b.height - 0.5 &&
          b.y < a.y + a.height - 0.5;
        for (const [name, b] of Object.entries({
          user: boxes.user,
          signOut: boxes.signOut,
          actions: boxes.actions,
          add: boxes.add,
        })) {
          expect(b?.visible, `${name} is visible`).toBe(true);
          expect(b?.onTop, `${name} is not covered`).toBe(true);
          expect(within(b!), `${name} is inside the window`).toBe(true);
        }
        expect(boxes.user?.text).toContain('wide-');
        expect(boxes.items.length).toBeGreaterThanOrEqual(3);
        for (const item of boxes.items) {
          expect(item?.visible, `status item "${item?.text}" is visible`).toBe(true);
          expect(item?.onTop, `status item "${item?.text}" is not covered`).toBe(true);
          expect(within(item!), `status item "${item?.text}" is inside the window`).toBe(true);
          // One line each: not squeezed into a column of words.
          expect(item!.height, `status item "${item?.text}" stays on one line`).toBeLessThan(
            item!.lineHeight * 1.6,
          );
        }
        const items = boxes.items.filter((b) => b !== null);
        for (let i = 0; i < items.length; i++)
          for (let j = i + 1; j < items.length; j++)
            expect(overlap(items[i]!, items[j]!), `"${items[i]!.text}" and "${items[j]!.text}" overlap`).toBe(
              false,
            );
        expect(overlap(boxes.actions!, boxes.add!)).toBe(false);
        expect(boxes.terminal!.width).toBeGreaterThan(viewport.width * 0.8);
        // Actions works from there: the menu opens inside the window.
        await shell.page.getByTestId('actions').click();
        const menu = shell.page.getByTestId('actions-menu');
        await menu.waitFor();
        const menuBox = await menu.boundingBox();
        expect(menuBox && within(menuBox)).toBe(true);
      } finally {
        await context.close();
      }
    });
  }

  it('the first fit fills the window as well as a fit after a resize does', async () => {
    const { userId, context } = await signedInContext(cove, browser, `fit-${process.pid}`, {
      width: 1280,
      height: 800,
    });
    owners.push(userId);
    const shell = new ShellPage(await context.newPage(), cove.origin);
    try {
      await shell.goto(region);
      await shell.waitForPrompt(60_000);
      const first = await shell.size();
      await shell.page.setViewportSize({ width: 1000, height: 600 });
      await shell.page.waitForFunction(
        (cols) => (window.coveShell?.activeSize()?.cols ?? 0) < cols,
        first?.cols ?? 0,
      );
      await shell.page.setViewportSize({ width: 1280, height: 800 });
      await shell.page.waitForFunction(
        (cols) => (window.coveShell?.activeSize()?.cols ?? 0) >= cols,
        first?.cols ?? 0,
      );
      await shell.page.waitForTimeout(300);
      const resized = await shell.size();
      expect(first).toEqual(resized);
      // And the shell was told that size.
      await shell.run('clear; stty size');
      await shell.waitForText(new RegExp(`^${resized?.rows} ${resized?.cols}$`, 'm'));
    } finally {
      await context.close();
    }
  });
});
