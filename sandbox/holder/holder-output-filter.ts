/**
 * The output of a held shell's stream minus the holder's header: cove-holder's client first writes
 * `ESC _ cove-holder;N ESC \` (N: the number of the output byte that follows, counted since the
 * shell started), then the shell's bytes unchanged. The header is cut and N kept (`start`), so the
 * reader knows which output it has and can ask for the rest after a reattach. Backpressure reaches
 * the underlying stream (pausing this one stops reading from the engine). Input waits for the
 * holder's first output, i.e. until its client has the TTY in raw mode.
 */
import { Duplex } from 'node:stream';

const headerStart = Buffer.from('\x1b_cove-holder;', 'latin1');
const headerEnd = Buffer.from('\x1b\\', 'latin1');
/** `ESC _ cove-holder;` + up to 15 digits + `ESC \`: anything longer is not a header. */
const maxHeaderBytes = headerStart.length + 15 + headerEnd.length;

export class HolderOutputFilter extends Duplex {
  /** Bytes at the start held back while they may still be the header; undefined once decided. */
  private head: Buffer | undefined = Buffer.alloc(0);
  private headerStart: number | undefined;
  private attached = false;
  /** Input written before the holder attached (Writable passes one chunk at a time). */
  private heldInput: { chunk: Buffer; callback: (error?: Error | null) => void } | undefined;

  constructor(private readonly raw: Duplex) {
    super();
    raw.on('data', (chunk: Buffer) => {
      if (!this.attached) {
        this.attached = true;
        const held = this.heldInput;
        this.heldInput = undefined;
        if (held) raw.write(held.chunk, held.callback);
      }
      const out = this.strip(chunk);
      if (out.length > 0 && !this.push(out)) raw.pause();
    });
    raw.once('end', () => {
      // A stream that ended inside what looked like a header still gives those bytes.
      const rest = this.head;
      this.head = undefined;
      if (rest && rest.length > 0) this.push(rest);
      this.push(null);
    });
    raw.once('error', (error: Error) => this.destroy(error));
    raw.once('close', () => this.destroy());
  }

  /**
   * The number of the first byte this stream passes on, counted by the holder since the shell
   * started; undefined until the header came (or when there was none).
   */
  get start(): number | undefined {
    return this.headerStart;
  }

  override _read(): void {
    this.raw.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Until the holder's client has put the TTY in raw mode (its first output says so), the TTY
    // would echo input itself.
    if (!this.attached) this.heldInput = { chunk, callback };
    else this.raw.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.raw.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.raw.destroy();
    callback(error);
  }

  private strip(chunk: Buffer): Buffer {
    if (!this.head) return chunk;
    const head = Buffer.concat([this.head, chunk]);
    const prefix = Math.min(head.length, headerStart.length);
    if (!head.subarray(0, prefix).equals(headerStart.subarray(0, prefix))) return this.noHeader(head);
    if (head.length <= headerStart.length) {
      this.head = head;
      return Buffer.alloc(0);
    }
    const end = head.indexOf(headerEnd, headerStart.length);
    if (end < 0) {
      // Digits so far, maybe then the terminator's first half (ESC).
      const rest = head.subarray(headerStart.length).toString('latin1');
      const digits = rest.endsWith('\u001b') ? rest.slice(0, -1) : rest;
      if (/^\d*$/.test(digits) && head.length < maxHeaderBytes) {
        this.head = head;
        return Buffer.alloc(0);
      }
      return this.noHeader(head);
    }
    const digits = head.subarray(headerStart.length, end).toString('latin1');
    if (!/^\d{1,15}$/.test(digits)) return this.noHeader(head);
    this.headerStart = Number(digits);
    this.head = undefined;
    return head.subarray(end + headerEnd.length);
  }

  /** The bytes held back were output after all. */
  private noHeader(head: Buffer): Buffer {
    this.head = undefined;
    return head;
  }
}
