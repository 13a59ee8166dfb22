import { describe, expect, it } from 'vitest';
import { OutputCoalescer } from '../../../../server/terminals/output-coalescer.js';

function harness(maxFrame = 1024) {
  const frames: string[] = [];
  const pending: ((error?: Error) => void)[] = [];
  let flushed = 0;
  const coalescer = new OutputCoalescer(
    (data, done) => {
      frames.push(data.toString());
      pending.push(done);
    },
    () => flushed++,
    maxFrame,
  );
  const complete = () => pending.shift()?.();
  return { coalescer, frames, complete, flushed: () => flushed };
}

describe('OutputCoalescer', () => {
  it('sends a chunk at once when nothing is in flight', () => {
    const { coalescer, frames } = harness();
    coalescer.push(Buffer.from('a'));
    expect(frames).toEqual(['a']);
  });

  it('merges chunks that arrive while a frame is in flight into one frame', () => {
    const { coalescer, frames, complete, flushed } = harness();
    coalescer.push(Buffer.from('a'));
    coalescer.push(Buffer.from('b'));
    coalescer.push(Buffer.from('c'));
    expect(frames).toEqual(['a']);
    expect(coalescer.queuedBytes).toBe(2);
    complete();
    expect(frames).toEqual(['a', 'bc']);
    expect(flushed()).toBe(1);
    complete();
    coalescer.push(Buffer.from('d'));
    expect(frames).toEqual(['a', 'bc', 'd']);
  });

  it('caps merged frames at the maximum frame size', () => {
    const { coalescer, frames, complete } = harness(4);
    coalescer.push(Buffer.from('x'));
    for (const c of 'abcdef') coalescer.push(Buffer.from(c));
    complete();
    complete();
    complete();
    expect(frames).toEqual(['x', 'abcd', 'ef']);
  });

  it('stops after a send error or close', () => {
    const { coalescer, frames } = harness();
    const errors: ((e?: Error) => void)[] = [];
    const c2 = new OutputCoalescer((data, done) => {
      frames.push(data.toString());
      errors.push(done);
    });
    c2.push(Buffer.from('1'));
    c2.push(Buffer.from('2'));
    errors.shift()?.(new Error('gone'));
    c2.push(Buffer.from('3'));
    expect(frames).toEqual(['1']);
    coalescer.close();
    coalescer.push(Buffer.from('z'));
    expect(frames).toEqual(['1']);
  });
});
