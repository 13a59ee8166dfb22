/**
 * The recording writer thread as production runs it: from the build (`dist/`, made by `tsc -b`
 * before the tests), since Node cannot load a thread's TypeScript module.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as ThreadModule from '../../../../server/recordings/recording-thread.js';
import { castOutput, parseAsciicast } from '../../../helpers/asciicast.js';

const built = new URL('../../../../dist/server/recordings/recording-thread.js', import.meta.url);
const root = mkdtempSync(join(tmpdir(), 'cove-rec-thread-'));
let thread: ThreadModule.RecordingThread;

beforeAll(async () => {
  if (!existsSync(built)) throw new Error('dist/server is missing: run `npx tsc -b` first');
  const { RecordingThread } = (await import(built.href)) as typeof ThreadModule;
  thread = new RecordingThread();
});
afterAll(async () => {
  await thread?.dispose();
  rmSync(root, { recursive: true, force: true });
});

const options = (
  name: string,
  over: Partial<Parameters<ThreadModule.RecordingThread['recorder']>[0]> = {},
) => ({
  path: join(root, name),
  cols: 80,
  rows: 24,
  startedAt: Date.UTC(2026, 5, 1),
  input: true,
  maxBytes: 1024 * 1024,
  maxQueueBytes: 1024 * 1024,
  ...over,
});

describe('RecordingThread', () => {
  it('writes a valid asciicast on its own thread, in order, with the times seen on this one', async () => {
    const problems: string[] = [];
    const recorder = thread.recorder(options('a.cast'), (p) => problems.push(p));
    recorder.input(Buffer.from('ls\r'));
    const euro = Buffer.from('€');
    recorder.output(Buffer.concat([Buffer.from('a.txt '), euro.subarray(0, 2)]));
    recorder.output(euro.subarray(2));
    recorder.resize(120, 40);
    for (let i = 0; i < 200; i++) recorder.output(Buffer.from(`line ${i}\r\n`));
    const result = await recorder.close();
    const text = readFileSync(join(root, 'a.cast'), 'utf8');
    expect(result).toEqual({ bytes: Buffer.byteLength(text), complete: true, problems: [] });
    expect(problems).toEqual([]);
    const cast = parseAsciicast(text);
    expect(cast.header).toMatchObject({ version: 2, width: 80, height: 24 });
    expect(cast.events.slice(0, 3).map((e) => [e[1], e[2]])).toEqual([
      ['i', 'ls\r'],
      ['o', 'a.txt '],
      ['o', '€'],
    ]);
    expect(cast.events.find((e) => e[1] === 'r')?.[2]).toBe('120x40');
    expect(castOutput(cast)).toContain('line 199\r\n');
  });

  it('drops events past what may be in flight and reports it; the file stays valid', async () => {
    const problems: string[] = [];
    const recorder = thread.recorder(options('b.cast', { maxQueueBytes: 4096 }), (p) => problems.push(p));
    // All in one turn: the thread cannot acknowledge anything in between.
    for (let i = 0; i < 100; i++) recorder.output(Buffer.from(`chunk ${i} ${'x'.repeat(100)}\r\n`));
    const result = await recorder.close();
    expect(problems).toEqual(['overflow']);
    expect(result.complete).toBe(false);
    expect(result.problems).toContain('overflow');
    const cast = parseAsciicast(readFileSync(join(root, 'b.cast'), 'utf8'));
    expect(castOutput(cast)).toContain('chunk 0 ');
    expect(castOutput(cast)).not.toContain('chunk 99 ');
  });

  it('reports a file it cannot write, and keeps serving other recordings', async () => {
    const problems: string[] = [];
    const broken = thread.recorder(options('no/such/dir/c.cast'), (p) => problems.push(p));
    broken.output(Buffer.from('lost'));
    expect(await broken.close()).toMatchObject({ complete: false, problems: ['write-failed'] });
    expect(problems).toEqual(['write-failed']);
    const fine = thread.recorder(options('d.cast'), () => undefined);
    fine.output(Buffer.from('kept'));
    expect((await fine.close()).complete).toBe(true);
    expect(castOutput(parseAsciicast(readFileSync(join(root, 'd.cast'), 'utf8')))).toBe('kept');
  });
});
