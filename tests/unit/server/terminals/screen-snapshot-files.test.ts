import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ScreenSnapshotFiles } from '../../../../server/terminals/screen-snapshot-files.js';

const root = mkdtempSync(join(tmpdir(), 'cove-screens-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('ScreenSnapshotFiles', () => {
  it('keeps a screen owner-only under a hash of the id, hands it back once, then forgets it', async () => {
    const dir = join(root, 'a', 'screens');
    const files = new ScreenSnapshotFiles(dir);
    const data = Buffer.from('\x1b[1mhello\x1b[0m\r\nworld é');
    await files.save('term-id-1', { cols: 100, rows: 30, data });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const names = readdirSync(dir);
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(names[0]).not.toContain('term-id-1');
    expect(statSync(join(dir, names[0] as string)).mode & 0o777).toBe(0o600);
    expect(await files.take('term-id-2')).toBeUndefined();
    const back = await files.take('term-id-1');
    expect(back?.cols).toBe(100);
    expect(back?.rows).toBe(30);
    expect(back?.data.equals(data)).toBe(true);
    expect(readdirSync(dir)).toHaveLength(0);
    expect(await files.take('term-id-1')).toBeUndefined();
  });

  it('keeps how much output the screen shows, and leaves it out when the file does not say', async () => {
    const dir = join(root, 'c');
    const files = new ScreenSnapshotFiles(dir);
    await files.save('t', { cols: 80, rows: 24, data: Buffer.from('x'), offset: 123456 });
    expect((await files.take('t'))?.offset).toBe(123456);
    await files.save('u', { cols: 80, rows: 24, data: Buffer.from('y') });
    const name = readdirSync(dir)[0] as string;
    writeFileSync(join(dir, name), '{"cols":80,"rows":24,"offset":-5}\nzzz');
    const back = await files.take('u');
    expect(back?.data.toString()).toBe('zzz');
    expect(back).not.toHaveProperty('offset');
  });

  it('ignores a damaged file and clears everything left over', async () => {
    const dir = join(root, 'b');
    const files = new ScreenSnapshotFiles(dir);
    await files.save('x', { cols: 80, rows: 24, data: Buffer.from('x') });
    const name = readdirSync(dir)[0] as string;
    writeFileSync(join(dir, name), '{"cols":0}\nzzz');
    expect(await files.take('x')).toBeUndefined();
    await files.save('y', { cols: 80, rows: 24, data: Buffer.from('y') });
    await files.clear();
    expect(readdirSync(dir)).toHaveLength(0);
    await new ScreenSnapshotFiles(join(root, 'missing')).clear();
  });
});
