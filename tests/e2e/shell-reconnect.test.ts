/**
 * F07 in a real Chromium against a real Cove and real containers: a reload gives back the same
 * screen and shell; a dropped connection (the server side of the socket cut, as a network loss
 * looks to the page) shows "Reconnecting…" over the old screen, then resumes with the output
 * printed meanwhile; so does a Cove restart (F03), with what the shell printed while no Cove was
 * running; a terminal deleted behind the page's back is offered again as a new one.
 */
import type { BrowserContext } from 'playwright-core';
// For the type of `app.websocketServer`, which the plugin declares.
import type {} from '@fastify/websocket';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoveServer } from './cove-server.js';
import type { ShellPage } from './models/shell-page.js';
import { openShellFixture, type ShellFixture } from './shell-fixture.js';

const region = 'us-east-1';

describe('shell page reconnects (F07)', () => {
  let fixture: ShellFixture;
  let cove: CoveServer;
  let context: BrowserContext;
  let shell: ShellPage;

  beforeAll(async () => {
    fixture = await openShellFixture({ user: 'reconnect-e2e', config: { homes: { enabled: false } } });
    ({ cove, context, shell } = fixture);
  });

  afterAll(async () => {
    await fixture?.close();
  });

  const connectionState = () => shell.page.getByTestId('connection-state').innerText();
  const activeTerminalId = async () =>
    (await shell.page.locator('.shell-tab-panel:not([hidden])').getAttribute('data-terminal-id')) ?? '';
  /** A number only the shell computes, so the typed command line never matches the output. */
  const unique = () => 1000 + Math.floor(Math.random() * 9000);

  it('F07 a reload shows the same screen and the same shell', async () => {
    await shell.goto(region);
    await shell.waitForPrompt(30_000);
    const id = await activeTerminalId();
    const n = unique();
    await shell.run(`echo before-$((${n}+1)); X=kept-$((${n}+2))`);
    await shell.waitForText(new RegExp(`^before-${n + 1}$`, 'm'));

    await shell.page.reload();
    await shell.waitForText(new RegExp(`^before-${n + 1}$`, 'm'));
    expect(await activeTerminalId()).toBe(id);
    expect(await shell.tabCount()).toBe(1);
    // The same shell: a variable set before the reload is still there.
    await shell.run('echo "after-[$X]"');
    await shell.waitForText(new RegExp(`^after-\\[kept-${n + 2}\\]$`, 'm'));
  });

  it('F07 a dropped connection shows Reconnecting… over the old screen, then the output printed meanwhile', async () => {
    const n = unique();
    await shell.run(`echo shown-$((${n}+1)); sleep 2; echo away-$((${n}+2))`);
    await shell.waitForText(new RegExp(`^shown-${n + 1}$`, 'm'));
    await shell.page.waitForTimeout(300);
    // What a network loss looks like to the page: its socket dies without a close frame.
    for (const client of cove.app.websocketServer.clients) client.terminate();

    const deadline = Date.now() + 10_000;
    let state = await connectionState();
    while (state !== 'Reconnecting…' && Date.now() < deadline) {
      await shell.page.waitForTimeout(20);
      state = await connectionState();
    }
    expect(state).toBe('Reconnecting…');
    // The screen is kept while reconnecting, not cleared.
    expect(await shell.text()).toMatch(new RegExp(`^shown-${n + 1}$`, 'm'));

    await shell.waitForText(new RegExp(`^away-${n + 2}$`, 'm'));
    const text = await shell.text();
    // One repaint, not the old screen plus a replay on top of it.
    expect(text.match(new RegExp(`^shown-${n + 1}$`, 'gm'))).toHaveLength(1);
    expect(await connectionState()).toBe('Connected');
    await shell.run('echo resumed-$((2+3))');
    await shell.waitForText(/^resumed-5$/m);
  });

  it('F03 a Cove restart mid-job: the page then shows every line the shell printed, once, in order', async () => {
    const n = unique();
    await shell.run(`for i in $(seq 1 300); do echo l${n}-$i; sleep 0.02; done; echo end-$((${n}+3))`);
    await shell.waitForText(new RegExp(`^l${n}-20$`, 'm'));
    // Cove is away for 2 s while the job prints on.
    await cove.restart(2_000);
    const text = await shell.waitForText(new RegExp(`^end-${n + 3}$`, 'm'), 60_000);
    const lines = [...text.matchAll(new RegExp(`^l${n}-(\\d+)$`, 'gm'))].map((m) => Number(m[1]));
    expect(lines).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(await connectionState()).toBe('Connected');
    await shell.run('echo back-$((6+7))');
    await shell.waitForText(/^back-13$/m);
  });

  it('F07 a terminal that no longer exists is offered again as a new one', async () => {
    const id = await activeTerminalId();
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'cove_session');
    // Dropped first, then deleted: the page's reconnect finds no such terminal (4404).
    for (const client of cove.app.websocketServer.clients) client.terminate();
    const deleted = await cove.app.inject({
      method: 'DELETE',
      url: `/api/environments/${region}/terminals/${id}`,
      headers: { origin: cove.origin, cookie: `cove_session=${cookie?.value ?? ''}` },
    });
    expect(deleted.statusCode).toBe(204);

    const gone = shell.page.getByTestId('shell-gone');
    await gone.waitFor({ timeout: 20_000 });
    expect(await gone.innerText()).toMatch(/no longer exists|has ended/);
    await shell.page.getByTestId('open-new').click();
    await shell.waitForPrompt(30_000);
    expect(await activeTerminalId()).not.toBe(id);
    await shell.run('echo fresh-$((4*4))');
    await shell.waitForText(/^fresh-16$/m);
  });
});
