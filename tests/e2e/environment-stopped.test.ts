/**
 * The user's container killed through the Docker API while the shell page is open (as an OOM kill
 * of the whole environment or a crash would): the page says "Your environment stopped" and offers
 * Restart; Restart gives a working prompt with the loop-mounted home as it was. Real Chromium,
 * real Cove, real Docker; the container and the home are removed afterwards.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShellPage } from './models/shell-page.js';
import { openShellFixture, type ShellFixture } from './shell-fixture.js';

const run = promisify(execFile);
const region = 'us-east-1';
const MiB = 1024 ** 2;

describe('shell page when the environment stops', () => {
  let fixture: ShellFixture;
  let shell: ShellPage;
  let ownerId: string;

  beforeAll(async () => {
    fixture = await openShellFixture({ user: 'stopped-e2e', loopHomeBytes: 64 * MiB });
    ({ shell, ownerId } = fixture);
  });

  afterAll(async () => {
    await fixture?.close();
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
