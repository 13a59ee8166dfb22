/**
 * Session recording → replay in a real Chromium against a real Cove and a real container (issue
 * 22): an admin turns recording on for a group in the console, a member's shell page says "This
 * session is recorded" in its banner and status line, the member runs a command, and the admin
 * replays the session with asciinema-player: the player's screen shows what the member saw. The
 * file itself is held to the asciicast v2 definition.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { castOutput, parseAsciicast } from '../helpers/asciicast.js';
import { adminPassword, desktop } from './cove-server.js';
import { AdminPage } from './models/admin-page.js';
import { LoginPage } from './models/login-page.js';
import { openShellFixture, shellRegion, type ShellFixture } from './shell-fixture.js';

describe('session recording and replay', () => {
  let fixture: ShellFixture;
  let adminContext: BrowserContext;
  let adminPage: Page;
  let admin: AdminPage;
  let username: string;

  beforeAll(async () => {
    fixture = await openShellFixture({ user: 'rec-e2e' });
    const user = await fixture.cove.store.users.get(fixture.ownerId);
    username = user?.username ?? '';
    const group = await fixture.cove.store.groups.create({ name: `recorded-${process.pid}` });
    await fixture.cove.store.groups.addMember(group.id, fixture.ownerId);
    adminContext = await fixture.browser.newContext({ viewport: desktop });
    adminPage = await adminContext.newPage();
    const login = new LoginPage(adminPage, fixture.cove.origin);
    await login.goto('/admin');
    await login.submitPassword('admin', adminPassword);
    await adminPage.waitForURL(`${fixture.cove.origin}/admin`);
    admin = new AdminPage(adminPage, fixture.cove.origin);
  });

  afterAll(async () => {
    await adminContext?.close();
    await fixture?.close();
  });

  it('records a member of a group an admin set to record, tells them, and replays what they saw', async () => {
    const { shell, cove } = fixture;
    // The admin turns recording on in the Groups tab.
    await admin.openTab('groups');
    const select = adminPage.locator(`tr[data-group="recorded-${process.pid}"] [data-testid=record-select]`);
    await select.selectOption('output');
    await adminPage.waitForFunction(
      (name) =>
        (
          document.querySelector(
            `tr[data-group="${name}"] [data-testid=record-select]`,
          ) as HTMLSelectElement | null
        )?.disabled === false,
      `recorded-${process.pid}`,
    );
    expect((await cove.store.groups.getByName(`recorded-${process.pid}`))?.record).toBe('output');

    // The member is told before typing anything.
    await shell.goto(shellRegion);
    await shell.waitForPrompt(30_000);
    const banner = shell.page.locator('[data-testid=recorded-banner]');
    expect(await banner.isVisible()).toBe(true);
    expect(await banner.innerText()).toContain('This session is recorded');
    expect(await shell.page.locator('[data-testid=recorded-status]').innerText()).toBe(
      'This session is recorded',
    );
    await shell.run('echo replay-$((6*7))');
    await shell.waitForText(/^replay-42$/m);
    const seen = (await shell.text()).split('\n').map((l) => l.trimEnd());
    const from = seen.findIndex((l) => l.includes('echo replay-'));
    const saw = seen.slice(from).filter((l) => l.trim() !== '');
    expect(saw.length).toBeGreaterThanOrEqual(2);
    await shell.closeTab(0);

    // The file is a valid asciicast v2 with that output in it.
    let recordingId = '';
    for (let i = 0; i < 100 && !recordingId; i++) {
      const [found] = await cove.store.recordings.search({ userId: fixture.ownerId });
      if (found?.endedAt) recordingId = found.id;
      else await shell.page.waitForTimeout(100);
    }
    expect(recordingId).not.toBe('');
    const parsed = parseAsciicast(
      readFileSync(join(cove.config.dataDir, 'recordings', `${recordingId}.cast`), 'utf8'),
    );
    expect(castOutput(parsed)).toContain('replay-42');

    // The admin finds it by user and replays it in the page.
    await admin.openTab('recordings');
    await adminPage.fill('[data-testid=recordings-user]', username);
    await adminPage.click('[data-testid=recordings-search]');
    const row = adminPage.locator(`[data-testid=recording-row][data-id="${recordingId}"]`);
    await row.waitFor();
    expect(await row.innerText()).toContain(username);
    await row.locator('[data-testid=recording-play]').click();
    const player = adminPage.locator('[data-testid=recording-player]');
    await player.waitFor();
    let screen = '';
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      screen = await player.evaluate((node) =>
        Array.from(node.querySelectorAll('.ap-line'))
          .map((line) => (line.textContent ?? '').trimEnd())
          .join('\n'),
      );
      if (saw.every((line) => screen.includes(line.trim()))) break;
      await adminPage.waitForTimeout(200);
    }
    for (const line of saw) expect(screen).toContain(line.trim());
    const audited = await cove.store.audit.list({ action: 'recording.viewed' });
    expect(audited[0]?.target).toBe(recordingId);
  });
});
