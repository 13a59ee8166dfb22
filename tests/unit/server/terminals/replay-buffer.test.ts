import { describe, expect, it } from 'vitest';
import { ReplayBuffer } from '../../../../server/terminals/replay-buffer.js';

describe('ReplayBuffer', () => {
  it('keeps everything below capacity', () => {
    const buffer = new ReplayBuffer(100);
    buffer.push(Buffer.from('hello '));
    buffer.push(Buffer.from('world'));
    expect(buffer.snapshot().toString()).toBe('hello world');
    expect(buffer.byteLength).toBe(11);
  });

  it('drops the oldest bytes and restarts at a line boundary', () => {
    const buffer = new ReplayBuffer(16);
    buffer.push(Buffer.from('line1\nline2\n'));
    buffer.push(Buffer.from('line3\nline4\n'));
    const text = buffer.snapshot().toString();
    expect(text).toBe('line3\nline4\n');
    expect(buffer.byteLength).toBeLessThanOrEqual(16);
  });

  it('never grows beyond capacity under a flood', () => {
    const buffer = new ReplayBuffer(1024);
    for (let i = 0; i < 10_000; i++) buffer.push(Buffer.from(`y\n`));
    expect(buffer.byteLength).toBeLessThanOrEqual(1024);
    expect(buffer.snapshot().toString()).toMatch(/^(y\n)+$/);
  });

  it('keeps the tail of a chunk larger than the capacity', () => {
    const buffer = new ReplayBuffer(8);
    buffer.push(Buffer.from('0123456789abcdef'));
    expect(buffer.snapshot().toString()).toBe('89abcdef');
    buffer.clear();
    expect(buffer.byteLength).toBe(0);
  });
});
