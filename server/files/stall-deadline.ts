/**
 * Deadlines for S3 bodies that stop moving mid-transfer (a hung or blackholed S3): the transfer
 * fails within `timeoutMs` with a 503 instead of waiting for the exec's deadline of minutes.
 * Only time spent waiting on S3 counts: a slow container (the reader or writer on the other side)
 * never trips them.
 */
import type { Readable } from 'node:stream';

/** S3 moved no bytes for the deadline. */
export class S3StallError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`${what}: no bytes for ${timeoutMs} ms`);
    this.name = 'S3StallError';
  }
}

/**
 * Yields `source`'s chunks; fails (and destroys `source`) when a chunk takes longer than
 * `timeoutMs` to arrive. The clock runs only while the consumer is waiting for the next chunk.
 */
export async function* readWithDeadline(
  source: Readable,
  timeoutMs: number,
  what: string,
): AsyncGenerator<Buffer, void, undefined> {
  const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let done = false;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new S3StallError(what, timeoutMs)), timeoutMs);
      });
      const next = await Promise.race([chunks.next(), stalled]).finally(() => clearTimeout(timer));
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) source.destroy();
  }
}

/**
 * Writes into `target` (a body S3 reads) and fails when S3 stops reading it: a write waits for
 * 'drain' at most `timeoutMs`. Returns the promise of that one write.
 */
export function writeWithDeadline(
  target: NodeJS.WritableStream & { destroyed: boolean },
  chunk: Buffer,
  timeoutMs: number,
  what: string,
): Promise<void> {
  if (target.destroyed) return Promise.reject(new Error(`${what}: closed`));
  if (target.write(chunk)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const finish = (error?: Error) => {
      clearTimeout(timer);
      target.off('drain', onDrain);
      target.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => finish();
    const onClose = () => finish(new Error(`${what}: closed`));
    const timer = setTimeout(() => finish(new S3StallError(what, timeoutMs)), timeoutMs);
    target.once('drain', onDrain);
    target.once('close', onClose);
  });
}
