/**
 * The last N bytes of a terminal's output, so a reattach within the grace period repaints recent
 * output. Bounded: the oldest chunks are dropped first.
 */
export class ReplayBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(readonly capacityBytes: number = 256 * 1024) {}

  get byteLength(): number {
    return this.size;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (chunk.length >= this.capacityBytes) {
      this.chunks = [Buffer.from(chunk.subarray(chunk.length - this.capacityBytes))];
      this.size = this.capacityBytes;
      this.trimToLineStart();
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    let trimmed = false;
    while (this.size > this.capacityBytes) {
      const first = this.chunks[0] as Buffer;
      const excess = this.size - this.capacityBytes;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
      trimmed = true;
    }
    if (trimmed) this.trimToLineStart();
  }

  /** Everything kept, as one buffer. */
  snapshot(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }

  clear(): void {
    this.chunks = [];
    this.size = 0;
  }

  /**
   * After dropping bytes the head may start mid-line, mid-escape-sequence or mid-UTF-8 character;
   * starting at the next line keeps the repaint clean. Only looks a little way ahead.
   */
  private trimToLineStart(): void {
    const first = this.chunks[0];
    if (!first) return;
    const newline = first.subarray(0, 4096).indexOf(0x0a);
    if (newline < 0) return;
    this.chunks[0] = first.subarray(newline + 1);
    this.size -= newline + 1;
    if (this.chunks[0].length === 0) this.chunks.shift();
  }
}
