/**
 * The shell page in a real Chromium against a real Cove and real Docker containers: the prompt,
 * a command, resizing the window, Ctrl+C in a flood, and a second tab. Containers made here are removed afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoveServer } from './cove-server.js';
import type { ShellPage } from './models/shell-page.js';
import { openShellFixture, type ShellFixture } from './shell-fixture.js';

const region = 'us-east-1';

describe('shell page', () => {
  let fixture: ShellFixture;
  let cove: CoveServer;
  let shell: ShellPage;
  let ownerId: string;

  beforeAll(async () => {
    fixture = await openShellFixture({ user: 'shell-e2e' });
    ({ cove, shell, ownerId } = fixture);
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it('opens a shell and runs echo $((6*7)) → 42', async () => {
    await shell.goto(region);
    await shell.waitForPrompt(30_000);
    expect(await shell.statusText()).toContain('no AWS credentials');
    await shell.run('echo $((6*7))');
    await shell.waitForText(/^42$/m);
  });

  it('fits the terminal to the window and the shell sees the new size', async () => {
    await shell.run('clear; stty size');
    const first = await shell.size();
    await shell.waitForText(new RegExp(`^${first?.rows} ${first?.cols}$`, 'm'));
    await shell.page.setViewportSize({ width: 800, height: 500 });
    const deadline = Date.now() + 5000;
    let second = await shell.size();
    while (second?.cols === first?.cols && Date.now() < deadline) {
      await shell.page.waitForTimeout(50);
      second = await shell.size();
    }
    expect(second?.cols).toBeLessThan(first?.cols ?? 0);
    await shell.run('clear; stty size');
    await shell.waitForText(new RegExp(`^${second?.rows} ${second?.cols}$`, 'm'));
  });

  it('asks before pasting several lines, and pastes one line without asking', async () => {
    await shell.paste('echo pasted-$((3*3))');
    await shell.waitForText(/echo pasted-\$\(\(3\*3\)\)$/);
    await shell.page.keyboard.press('Enter');
    await shell.waitForText(/^pasted-9$/m);
    await shell.paste('echo one-$((5+5))\necho two\n');
    const dialog = shell.page.locator('dialog');
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain('Paste several lines?');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    // A command typed after the cancel has run, so anything the cancelled paste sent would show by now.
    await shell.run('echo after-cancel-$((2*3))');
    await shell.waitForText(/^after-cancel-6$/m);
    expect(await shell.text()).not.toContain('one-10');
    expect(await shell.text()).not.toContain('echo one-');
    await shell.paste('echo one-$((5+5))\n');
    await dialog.getByRole('button', { name: 'Paste' }).click();
    // bash's bracketed paste keeps a pasted newline in the line; Enter runs it.
    await shell.waitForText(/echo one-\$\(\(5\+5\)\)$/);
    await shell.run('');
    await shell.waitForText(/^one-10$/m);
  });

  it('gives the prompt back after Ctrl+C during `yes`, skipping the backlog, and the shell answers', async () => {
    // A slow computer's page, which falls behind the flood (this one may keep up at full speed).
    const cdp = await shell.page.context().newCDPSession(shell.page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 8 });
    await shell.run('yes');
    await shell.waitForText(/^y$/m);
    // Long enough for every buffer between the shell and the screen to fill.
    await shell.page.waitForTimeout(1500);
    await shell.page.keyboard.press('Control+C');
    // Generous: it only catches a hang (how fast is a bench figure, tests/bench/page.ts).
    await shell.waitForPrompt(30_000);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });
    await cdp.detach();
    await shell.run('echo after-$((2+3))');
    await shell.waitForText(/^after-5$/m);
    // The page shows the server's repaint (its mirror keeps 1000 lines), not 5000 lines of `y`
    // that crawled through the renderer after the interrupt.
    expect((await shell.text()).split('\n').length).toBeLessThan(1100);
  });

  it('opens a second tab with its own shell in the same environment', async () => {
    await shell.run('echo first-tab-$((1+1))');
    await shell.waitForText(/^first-tab-2$/m);
    await shell.newTab();
    expect(await shell.tabCount()).toBe(2);
    await shell.waitForPrompt(15_000);
    expect(await shell.text()).not.toContain('first-tab-2');
    await shell.run('echo second-tab-$((2+2)) $HOSTNAME');
    await shell.waitForText(/^second-tab-4 /m);
    const terminals = cove.app.terminals.list(ownerId, region);
    expect(terminals).toHaveLength(2);
  });
});
