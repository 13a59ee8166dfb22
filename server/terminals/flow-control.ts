/**
 * Watermark flow control between the shell's output stream and one WebSocket (ttyd, wetty and
 * the xterm.js flow-control guide). The page acknowledges what it has rendered; when the bytes
 * sent but not yet acknowledged, or the bytes the socket could not yet hand to the kernel, pass
 * the high watermark, the source is paused; it resumes once both are below the low watermark.
 * A paused source stops reading from Docker, so back-pressure reaches the process in the
 * container and a `yes` flood never grows the server's memory.
 *
 * Acks are cumulative per connection: `{"type":"ack","bytes":N}` says the page has rendered N
 * bytes in total since it connected. That makes duplicates harmless, and an ack beyond what
 * was sent is clamped rather than trusted.
 */
export interface FlowControlOptions {
  readonly highWatermarkBytes: number;
  readonly lowWatermarkBytes: number;
  /** Bytes queued in the socket but not yet written (ws `bufferedAmount`). */
  readonly bufferedAmount: () => number;
  readonly pause: () => void;
  readonly resume: () => void;
}

export const defaultFlowWatermarks = {
  highWatermarkBytes: 128 * 1024,
  lowWatermarkBytes: 32 * 1024,
} as const;

export class FlowControl {
  private sentBytes = 0;
  private ackedBytes = 0;
  private paused = false;
  private bypassed = false;

  constructor(private readonly options: FlowControlOptions) {
    if (options.lowWatermarkBytes >= options.highWatermarkBytes)
      throw new RangeError('the low watermark must be below the high watermark');
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Bytes sent that the page has not acknowledged yet. */
  get unacknowledged(): number {
    return this.sentBytes - this.ackedBytes;
  }

  /** Call after handing `bytes` of output to the socket. */
  sent(bytes: number): void {
    this.sentBytes += bytes;
    this.evaluate();
  }

  /** Call with the page's cumulative ack. Returns false for an ack that goes backwards. */
  acknowledged(totalBytes: number): boolean {
    if (totalBytes < this.ackedBytes) return false;
    this.ackedBytes = Math.min(totalBytes, this.sentBytes);
    this.evaluate();
    return true;
  }

  /** Call when the socket has flushed data, so a pause caused by `bufferedAmount` can end. */
  drained(): void {
    this.evaluate();
  }

  /**
   * While bypassed the source is never paused for this socket (its output is being skipped, not
   * queued); turning the bypass off looks at the counts again.
   */
  bypass(on: boolean): void {
    this.bypassed = on;
    if (on) this.release();
    else this.evaluate();
  }

  /** Leaves the source running: used when the socket goes away. */
  release(): void {
    if (this.paused) {
      this.paused = false;
      this.options.resume();
    }
  }

  private evaluate(): void {
    if (this.bypassed) return;
    const pending = Math.max(this.unacknowledged, this.options.bufferedAmount());
    if (!this.paused && pending >= this.options.highWatermarkBytes) {
      this.paused = true;
      this.options.pause();
    } else if (this.paused && pending < this.options.lowWatermarkBytes) {
      this.paused = false;
      this.options.resume();
    }
  }
}
