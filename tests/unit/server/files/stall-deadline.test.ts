/**
 * The mid-transfer S3 deadlines: only time spent waiting on S3 counts, never a slow consumer.
 */
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  S3StallError,
  readWithDeadline,
  writeWithDeadline,
} from '../../../../server/files/stall-deadline.js';

describe('readWithDeadline', () => {
  it('fails with S3StallError when the source goes silent, and destroys it', async () => {
    const source = new PassThrough();
    source.write(Buffer.from('first'));
    const seen: string[] = [];
    const reading = (async () => {
      for await (const chunk of readWithDeadline(source, 50, 'GetObject')) seen.push(chunk.toString());
    })();
    await expect(reading).rejects.toBeInstanceOf(S3StallError);
    expect(seen).toEqual(['first']);
    expect(source.destroyed).toBe(true);
  });

  it('never blames S3 for a consumer that takes longer than the deadline between chunks', async () => {
    const source = Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')], {
      objectMode: false,
    });
    const seen: string[] = [];
    for await (const chunk of readWithDeadline(source, 30, 'GetObject')) {
      seen.push(chunk.toString());
      await sleep(80);
    }
    expect(seen.join('')).toBe('abc');
  });
});

describe('writeWithDeadline', () => {
  it('fails when the target stops taking bytes, and resolves once it drains in time', async () => {
    const stuck = new PassThrough({ highWaterMark: 4 });
    await expect(
      writeWithDeadline(stuck, Buffer.from('more than four'), 50, 'PutObject'),
    ).rejects.toBeInstanceOf(S3StallError);

    const slow = new PassThrough({ highWaterMark: 4 });
    const writing = writeWithDeadline(slow, Buffer.from('more than four'), 500, 'PutObject');
    setTimeout(() => slow.resume(), 50);
    await expect(writing).resolves.toBeUndefined();
  });
});
