/**
 * Sends output at once when nothing is in flight and merges chunks into larger frames only while
 * the socket is still busy with the previous frame. No timer: latency at rest is one write, and
 * under load the frame count drops as the backlog grows.
 */
export type SendFrame = (data: Buffer, done: (error?: Error) => void) => void;

export class OutputCoalescer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inFlight = false;
  private closed = false;

  constructor(
    private readonly send: SendFrame,
    /** Called after each frame has been flushed (flow control re-evaluates there). */
    private readonly onFlushed: () => void = () => {},
    private readonly maxFrameBytes: number = 256 * 1024,
  ) {}

  get queuedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer): void {
    if (this.closed || chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (!this.inFlight) this.flush();
  }

  /** Forgets what is queued but not yet handed to the socket; returns its size. */
  discardQueued(): number {
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    return bytes;
  }

  close(): void {
    this.closed = true;
    this.pending = [];
    this.pendingBytes = 0;
  }

  private flush(): void {
    if (this.closed || this.pending.length === 0) return;
    let frame: Buffer;
    if (this.pending.length === 1 || this.pendingBytes <= this.maxFrameBytes) {
      frame =
        this.pending.length === 1
          ? (this.pending[0] as Buffer)
          : Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    } else {
      const parts: Buffer[] = [];
      let size = 0;
      while (this.pending.length > 0 && size + (this.pending[0] as Buffer).length <= this.maxFrameBytes) {
        const next = this.pending.shift() as Buffer;
        parts.push(next);
        size += next.length;
      }
      if (parts.length === 0) {
        const next = this.pending.shift() as Buffer;
        parts.push(next);
        size = next.length;
      }
      this.pendingBytes -= size;
      frame = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
    }
    this.inFlight = true;
    this.send(frame, (error) => {
      this.inFlight = false;
      if (error) {
        this.close();
        return;
      }
      this.onFlushed();
      this.flush();
    });
  }
}
