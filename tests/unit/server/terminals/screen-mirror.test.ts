/**
 * The screen mirror against a plain headless xterm.js fed every byte: skipping the start of a
 * plain text flood must leave exactly the screen, scrollback and cursor that parsing it all gives,
 * and must not happen where earlier lines could survive (alternate screen, scroll region, escape
 * sequences in the stretch).
 */
import { describe, expect, it } from 'vitest';
import headless from '@xterm/headless';
import serialize from '@xterm/addon-serialize';
import { plainSkip, ScreenMirror } from '../../../../server/terminals/screen-mirror.js';

const cols = 40;
const rows = 10;
const scrollbackLines = 50;
const keep = scrollbackLines + 2 * rows + 1;

/** What a mirror's snapshot should be: every byte parsed by xterm.js, nothing skipped. */
async function reference(chunks: readonly string[]): Promise<string> {
  const terminal = new headless.Terminal({ cols, rows, scrollback: scrollbackLines, allowProposedApi: true });
  const serializer = new serialize.SerializeAddon();
  terminal.loadAddon(serializer);
  for (const chunk of chunks)
    await new Promise<void>((resolve) => terminal.write(Buffer.from(chunk), resolve));
  const screen = serializer.serialize({ scrollback: scrollbackLines });
  terminal.dispose();
  return screen;
}

/** Feeds the mirror the way a shell does (many chunks at once), the first `settled` parsed first. */
async function mirrored(
  chunks: readonly string[],
  settled = 1,
): Promise<{ screen: string; skipped: number }> {
  const mirror = new ScreenMirror({ cols, rows, scrollbackLines });
  for (const chunk of chunks.slice(0, settled)) mirror.write(Buffer.from(chunk));
  await mirror.snapshot();
  for (const chunk of chunks.slice(settled)) mirror.write(Buffer.from(chunk));
  const screen = (await mirror.snapshot()).toString('utf8');
  const skipped = mirror.skippedBytes;
  mirror.dispose();
  return { screen, skipped };
}

const flood = (lines: number, text = 'y') => `${text}\r\n`.repeat(lines);

describe('plainSkip', () => {
  it('starts just after the line feed that has enough plain line feeds after it', () => {
    const data = Buffer.from('a\r\nb\r\nc\r\nd\r\n');
    expect(plainSkip(data, 2)).toBe('a\r\nb\r\n'.length);
    expect(plainSkip(data, 3)).toBe('a\r\n'.length);
    expect(plainSkip(data, 4)).toBe(0);
  });

  it('counts only the plain text the data starts with', () => {
    const data = Buffer.from(`${flood(3)}\x1b[31m${flood(10)}`);
    expect(plainSkip(data, 2)).toBe(3);
    expect(plainSkip(data, 3)).toBe(0);
    expect(plainSkip(Buffer.from(`\x07${flood(10)}`), 2)).toBe(0);
  });
});

describe('ScreenMirror', () => {
  it('skips most of a plain flood and shows exactly what parsing all of it shows', async () => {
    const chunks = [
      '\x1b[1;32mbench\x1b[0m:~$ yes\r\n',
      ...Array.from({ length: 20 }, () => flood(1000)),
      'y\r\ny\r\n^C\r\n\x1b[1;32mbench\x1b[0m:~$ ',
    ];
    const { screen, skipped } = await mirrored(chunks);
    expect(screen).toBe(await reference(chunks));
    expect(screen).toContain('bench');
    expect(skipped).toBeGreaterThan(50_000);
  });

  it('leaves nothing from before when a flood starts mid-screen below old text', async () => {
    const chunks = [
      'top line\r\n'.repeat(rows),
      '\x1b[3;5H', // the cursor back up, above lines that still hold text
      `${flood(keep * 3, 'line of a long log with tabs\tand more text')}`,
      'partial line, no newline',
    ];
    const { screen, skipped } = await mirrored(chunks, 2);
    expect(skipped).toBeGreaterThan(0);
    expect(screen).toBe(await reference(chunks));
  });

  it('skips nothing in the alternate screen or inside a scroll region', async () => {
    for (const start of ['\x1b[?1049h', '\x1b[2;8r\x1b[5;1H']) {
      const chunks = [`old text\r\n`.repeat(rows), start, flood(keep * 2, 'z'), 'end'];
      const { screen, skipped } = await mirrored(chunks, 2);
      expect(skipped).toBe(0);
      expect(screen).toBe(await reference(chunks));
    }
  });

  it('counts skipped bytes as parsed, so its backlog drains', async () => {
    const mirror = new ScreenMirror({ cols, rows, scrollbackLines });
    mirror.write(Buffer.from('$ '));
    for (let i = 0; i < 10; i++) mirror.write(Buffer.from(flood(10_000)));
    await mirror.snapshot();
    expect(mirror.backlogBytes).toBe(0);
    mirror.dispose();
  });
});
