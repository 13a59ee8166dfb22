import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AsciicastRecorder,
  sizeLimitMarker,
  type AsciicastRecorderOptions,
  type RecordingProblem,
} from '../../../../server/recordings/asciicast-recorder.js';
import { castOutput, parseAsciicast } from '../../../helpers/asciicast.js';

const root = mkdtempSync(join(tmpdir(), 'cove-rec-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
const make = (
  over: Partial<AsciicastRecorderOptions> = {},
): {
  recorder: AsciicastRecorder;
  path: string;
  problems: RecordingProblem[];
  tick: (ms: number) => void;
} => {
  let now = 1000;
  const problems: RecordingProblem[] = [];
  const path = join(root, `r${n++}.cast`);
  const recorder = new AsciicastRecorder({
    path,
    cols: 80,
    rows: 24,
    startedAt: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
    env: { TERM: 'xterm-256color', SHELL: '/bin/bash' },
    title: 'alice in eu-west-1',
    input: false,
    maxBytes: 1024 * 1024,
    maxQueueBytes: 1024 * 1024,
    clock: () => now,
    onProblem: (p) => problems.push(p),
    ...over,
  });
  return { recorder, path, problems, tick: (ms) => (now += ms) };
};

describe('AsciicastRecorder', () => {
  it('writes a valid asciicast v2 file: header, timed output, resizes, UTF-8 split across chunks', async () => {
    const { recorder, path, tick } = make();
    tick(250);
    recorder.output(Buffer.from('\x1b[1mhello\x1b[0m\r\n'));
    tick(500);
    const euro = Buffer.from('€');
    recorder.output(euro.subarray(0, 1));
    recorder.output(Buffer.concat([euro.subarray(1), Buffer.from('"quoted"\\')]));
    recorder.input(Buffer.from('secret\r'));
    tick(1000);
    recorder.resize(120, 40);
    const result = await recorder.close();
    const text = readFileSync(path, 'utf8');
    expect(result).toEqual({ bytes: Buffer.byteLength(text), complete: true, problems: [] });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const cast = parseAsciicast(text);
    expect(cast.header).toEqual({
      version: 2,
      width: 80,
      height: 24,
      timestamp: Math.floor(Date.UTC(2026, 0, 2, 3, 4, 5) / 1000),
      env: { TERM: 'xterm-256color', SHELL: '/bin/bash' },
      title: 'alice in eu-west-1',
    });
    expect(cast.events).toEqual([
      [0.25, 'o', '\x1b[1mhello\x1b[0m\r\n'],
      [0.75, 'o', '€"quoted"\\'],
      [1.75, 'r', '120x40'],
    ]);
  });

  it('records input only when asked to', async () => {
    const { recorder, path, tick } = make({ input: true });
    tick(100);
    recorder.input(Buffer.from('ls\r'));
    recorder.output(Buffer.from('ls\r\n'));
    await recorder.close();
    expect(parseAsciicast(readFileSync(path, 'utf8')).events).toEqual([
      [0.1, 'i', 'ls\r'],
      [0.1, 'o', 'ls\r\n'],
    ]);
  });

  it('cuts at the size bound with a marker and stays within it', async () => {
    const maxBytes = 4096;
    const { recorder, path, problems } = make({ maxBytes });
    for (let i = 0; i < 200; i++) recorder.output(Buffer.from(`line ${i} ${'x'.repeat(40)}\r\n`));
    const result = await recorder.close();
    const text = readFileSync(path, 'utf8');
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(maxBytes);
    expect(result.complete).toBe(false);
    expect(result.problems).toEqual(['size-limit']);
    expect(problems).toEqual(['size-limit']);
    const cast = parseAsciicast(text);
    expect(cast.events.at(-1)?.slice(1)).toEqual(['m', sizeLimitMarker]);
    expect(castOutput(cast)).toContain('line 0 ');
    expect(castOutput(cast)).not.toContain('line 199 ');
  });

  it('drops events (never blocks) when the queue outgrows its bound, and reports it once', async () => {
    const { recorder, path, problems } = make({ maxQueueBytes: 1000 });
    // All in one turn: the writer cannot run in between, as with a disk slower than the shell.
    for (let i = 0; i < 100; i++) recorder.output(Buffer.from(`chunk ${i} ${'y'.repeat(30)}\r\n`));
    const result = await recorder.close();
    expect(problems).toEqual(['overflow']);
    expect(result.complete).toBe(false);
    const cast = parseAsciicast(readFileSync(path, 'utf8'));
    expect(castOutput(cast)).toContain('chunk 0 ');
    expect(castOutput(cast)).not.toContain('chunk 99 ');
  });

  it('survives a file it cannot write: the recording is marked incomplete, nothing throws', async () => {
    const { recorder, problems } = make({ path: join(root, 'no', 'such', 'dir', 'x.cast') });
    recorder.output(Buffer.from('hello'));
    const result = await recorder.close();
    expect(result.complete).toBe(false);
    expect(problems).toEqual(['write-failed']);
    recorder.output(Buffer.from('after'));
    expect(await recorder.close()).toEqual(result);
  });

  it('keeps writing across many turns and closes idempotently', async () => {
    const { recorder, path, tick } = make();
    for (let i = 0; i < 20; i++) {
      tick(10);
      recorder.output(Buffer.from(`${i};`));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const first = recorder.close();
    expect(await recorder.close()).toEqual(await first);
    const cast = parseAsciicast(readFileSync(path, 'utf8'));
    expect(castOutput(cast)).toBe(Array.from({ length: 20 }, (_, i) => `${i};`).join(''));
  });
});

describe('the asciicast v2 validator', () => {
  it('refuses what the format does not allow', () => {
    const header = '{"version":2,"width":80,"height":24}\n';
    expect(() => parseAsciicast(header)).not.toThrow();
    expect(() => parseAsciicast('{"version":1,"width":80,"height":24}\n')).toThrow(/header/);
    expect(() => parseAsciicast('{"version":2,"width":80}\n')).toThrow(/header/);
    expect(() => parseAsciicast(`${header}[0.1, "x", "a"]\n`)).toThrow(/line 2/);
    expect(() => parseAsciicast(`${header}[0.1, "r", "wide"]\n`)).toThrow(/line 2/);
    expect(() => parseAsciicast(`${header}[0.2, "o", "a"]\n[0.1, "o", "b"]\n`)).toThrow(/back/);
    expect(() => parseAsciicast(`${header}[0.1, "o", "a"]`)).toThrow(/newline/);
  });
});
