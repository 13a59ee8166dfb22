import { PassThrough, Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HolderOutputFilter } from '../../../sandbox/holder-output-filter.js';

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

const attach = '\x1b[H\x1b[J';
const trailer = '\x1b[999H\r\n[EOF - dtach terminating]\r\n\x1b[?25h';

describe('HolderOutputFilter', () => {
  it("drops dtach's screen clear at attach and its notice at the end, nothing else", async () => {
    const p = pair();
    p.engine.write(`${attach}prompt$ `);
    p.engine.write(`ls\r\nexit\r\n${trailer}`);
    p.engine.end();
    await p.ended;
    expect(p.text()).toBe('prompt$ ls\r\nexit\r\n');
  });

  it('cuts the end notice when dtach writes it line by line', async () => {
    const p = pair();
    p.engine.write(`${attach}bye\r\n`);
    p.engine.write('\x1b[999H\r\n');
    p.engine.write('[EOF - dtach terminating]\r\n');
    p.engine.write('\x1b[?25h');
    p.engine.end();
    await p.ended;
    expect(p.text()).not.toContain('dtach');
    expect(p.text()).not.toContain('\x1b[?25h');
    expect(p.text().startsWith('bye\r\n')).toBe(true);
  });

  it('finds the clear split over chunks, and keeps bytes that only looked like its start', async () => {
    const split = pair();
    for (const ch of `${attach}x`) split.engine.write(ch);
    split.engine.end();
    await split.ended;
    expect(split.text()).toBe('x');

    const lookalike = pair();
    lookalike.engine.write('\x1b[');
    lookalike.engine.write('31mred');
    lookalike.engine.end();
    await lookalike.ended;
    expect(lookalike.text()).toBe('\x1b[31mred');
  });

  it('leaves a later clear screen from a program alone', async () => {
    const p = pair();
    p.engine.write(`${attach}a`);
    p.engine.write(`${attach}b`);
    p.engine.end();
    await p.ended;
    expect(p.text()).toBe(`a${attach}b`);
  });

  it('holds input until the holder attached, then passes it through; destroys the raw stream with itself', async () => {
    const p = pair();
    p.filter.write(Buffer.from('echo hi\r'));
    p.filter.write(Buffer.from('ls\r'));
    await new Promise((r) => setImmediate(r));
    // The TTY would still echo it itself, ahead of dtach's first output.
    expect(p.typed).toHaveLength(0);
    p.engine.write(attach);
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
    p.engine.write(attach);
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
