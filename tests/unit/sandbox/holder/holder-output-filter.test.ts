import { PassThrough, Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HolderOutputFilter } from '../../../../sandbox/holder/holder-output-filter.js';

/** A raw exec stream: what the test writes to `engine` comes out of the filter. */
const pair = () => {
  const engine = new PassThrough();
  const typed: Buffer[] = [];
  const raw = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      typed.push(chunk);
      cb();
    },
  });
  engine.on('data', (chunk: Buffer) => raw.push(chunk));
  engine.on('end', () => raw.push(null));
  const filter = new HolderOutputFilter(raw);
  const out: Buffer[] = [];
  filter.on('data', (chunk: Buffer) => out.push(chunk));
  const ended = new Promise<void>((resolve) => filter.on('end', resolve));
  return { engine, raw, filter, typed, ended, text: () => Buffer.concat(out).toString('latin1') };
};

const header = (n: number) => `\x1b_cove-holder;${n}\x1b\\`;

describe('HolderOutputFilter', () => {
  it("cuts the holder's header and keeps where the output starts; passes the rest untouched", async () => {
    const p = pair();
    expect(p.filter.start).toBeUndefined();
    p.engine.write(`${header(1234)}prompt$ `);
    p.engine.write(`ls\r\n${header(5)}exit\r\n`);
    p.engine.end();
    await p.ended;
    expect(p.filter.start).toBe(1234);
    // Only the first one is the holder's: a later lookalike is output.
    expect(p.text()).toBe(`prompt$ ls\r\n${header(5)}exit\r\n`);
  });

  it('finds the header split over chunks, byte by byte', async () => {
    const p = pair();
    for (const ch of `${header(987654321)}x`) p.engine.write(ch);
    p.engine.end();
    await p.ended;
    expect(p.filter.start).toBe(987654321);
    expect(p.text()).toBe('x');
  });

  it('keeps bytes that only looked like a header, and has no start then', async () => {
    for (const lookalike of [
      '\x1b[31mred',
      '\x1b_cove-holder;12x\x1b\\',
      '\x1b_cove-holder;12',
      '\x1b_other',
    ]) {
      const p = pair();
      for (const ch of lookalike) p.engine.write(ch);
      p.engine.end();
      await p.ended;
      expect(p.text()).toBe(lookalike);
      expect(p.filter.start).toBeUndefined();
    }
    const long = pair();
    long.engine.write(`\x1b_cove-holder;${'1'.repeat(40)}\x1b\\`);
    long.engine.end();
    await long.ended;
    expect(long.filter.start).toBeUndefined();
    expect(long.text()).toContain('1'.repeat(40));
  });

  it('holds input until the holder attached, then passes it through; destroys the raw stream with itself', async () => {
    const p = pair();
    p.filter.write(Buffer.from('echo hi\r'));
    p.filter.write(Buffer.from('ls\r'));
    await new Promise((r) => setImmediate(r));
    // The TTY would still echo it itself, ahead of the holder's first output.
    expect(p.typed).toHaveLength(0);
    p.engine.write(header(0));
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(p.typed).toString()).toBe('echo hi\rls\r');
    p.filter.destroy();
    await new Promise((r) => setImmediate(r));
    expect(p.raw.destroyed).toBe(true);
  });

  it('pauses the raw stream while its reader is paused (flow control reaches the engine)', async () => {
    const p = pair();
    p.filter.pause();
    p.filter.removeAllListeners('data');
    p.engine.write(header(0));
    for (let i = 0; i < 64; i++) p.engine.write(Buffer.alloc(4096, 0x61));
    await new Promise((r) => setImmediate(r));
    expect(p.raw.isPaused()).toBe(true);
    let got = 0;
    p.filter.on('data', (chunk: Buffer) => (got += chunk.length));
    p.filter.resume();
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBe(64 * 4096);
  });
});
