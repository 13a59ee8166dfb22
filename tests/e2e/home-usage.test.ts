/**
 * The home in the shell page, in a real Chromium against a real Cove with real containers and a
 * real loop-mounted home: the status line shows its usage (with the expiry date in the tooltip)
 * and follows a 50 MB write; Delete home (type "delete") gives a fresh, empty home. Containers and
 * homes made here are removed afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoveServer } from './cove-server.js';
import type { ShellPage } from './models/shell-page.js';
import { openShellFixture, type ShellFixture } from './shell-fixture.js';

const region = 'us-east-1';
const MiB = 1024 ** 2;
/** `12 MiB / 256 MiB` style: what the status line shows for a 256 MiB home (binary units, as df -h). */
const usagePattern = /^(\d+(?:\.\d)?) (B|KiB|MiB) \/ 256 MiB$/;

/** The used part, in MiB. */
const megabytes = (text: string): number => {
  const [, value = '0', unit = 'B'] = usagePattern.exec(text) ?? [];
  return Number(value) / ({ B: MiB, KiB: 1024, MiB: 1 } as Record<string, number>)[unit]!;
};

describe('home usage in the shell page', () => {
  let fixture: ShellFixture;
  let cove: CoveServer;
  let shell: ShellPage;
  let ownerId: string;

  beforeAll(async () => {
    fixture = await openShellFixture({ user: 'home-e2e', loopHomeBytes: 256 * MiB });
    ({ cove, shell, ownerId } = fixture);
  });

  afterAll(async () => {
    await fixture?.close();
  });

  const usage = () => shell.page.getByTestId('home-usage');

  /** Polls the status line until `check` holds for its usage text. */
  const waitForUsage = async (check: (text: string) => boolean, timeoutMs: number): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    let text = '';
    while (Date.now() < deadline) {
      text = (await usage().textContent()) ?? '';
      if (check(text)) return text;
      await shell.page.waitForTimeout(250);
    }
    throw new Error(`the status line's home usage never matched; it shows "${text}"`);
  };

  it('shows usage like "2 MiB / 256 MiB" with the expiry date in the tooltip, and follows a 50 MB write', async () => {
    await shell.goto(region);
    await shell.waitForPrompt(30_000);
    const before = await waitForUsage((t) => usagePattern.test(t), 10_000);
    expect(megabytes(before)).toBeLessThan(20);
    const title = (await usage().getAttribute('title')) ?? '';
    expect(title).toMatch(/If you do not use it, it is deleted on \w+ \d+, \d{4}\./);
    // What df shows as Size (the filesystem after ext4's overhead) next to the home's size.
    expect(title).toMatch(
      / used of \d+ MiB usable in your 256 MiB home \(\d+%; 1 GiB = 1024 MiB, as df -h counts\)/,
    );

    await shell.run('dd if=/dev/zero of=~/f bs=1M count=50; sync; echo wrote-$((25*2))');
    await shell.waitForText(/^wrote-50$/m);
    // The page refreshes the usage every 30 s.
    const after = await waitForUsage((t) => megabytes(t) >= megabytes(before) + 45, 40_000);
    expect(megabytes(after)).toBeLessThan(megabytes(before) + 70);
  });

  it('Delete home asks for the word delete, then opens a fresh terminal on an empty home', async () => {
    await shell.page.getByTestId('actions').click();
    await shell.page.getByTestId('delete-home').click();
    const confirmButton = shell.page.getByRole('button', { name: 'Delete home' });
    const confirmInput = shell.page.getByTestId('delete-home-confirm');
    await confirmInput.fill('yes');
    expect(await confirmButton.isDisabled()).toBe(true);
    await confirmInput.fill('delete');
    await confirmButton.click();

    await shell.waitForPrompt(30_000);
    expect(await shell.tabCount()).toBe(1);
    await waitForUsage((t) => usagePattern.test(t) && megabytes(t) < 20, 10_000);
    await shell.run('test -e ~/f && echo still-$((1+1)) || echo gone-$((1+1))');
    await shell.waitForText(/^gone-2$/m);
    const audit = await cove.store.audit.list({ action: 'home.delete' });
    expect(audit[0]).toMatchObject({ actorId: ownerId, target: `home:${region}:${ownerId}` });
  });
});
