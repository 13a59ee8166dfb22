/**
 * The output of a held shell's stream minus what dtach's client adds of its own: it clears the
 * screen when it attaches (which would wipe the screen a reattaching page already shows) and says
 * "[EOF - dtach terminating]" when the shell ends. Everything else passes through unchanged, and
 * backpressure reaches the underlying stream (pausing this one stops reading from the engine).
 * Input waits for the holder's first output, i.e. until its client has the TTY in raw mode.
 */
import { Duplex } from 'node:stream';

/** Written first by `dtach -a`/`-A` (cursor home, erase display). */
const attachPrefix = Buffer.from('\x1b[H\x1b[J', 'latin1');
/**
 * Written last when the session ends: cursor to the bottom, the notice, cursor shown again. dtach
 * writes them line-buffered, so they may come in separate chunks: the notice is cut wherever it
 * comes, the cursor move only when it comes with it.
 */
const endMove = Buffer.from('\x1b[999H\r\n', 'latin1');
const endNotice = Buffer.from('[EOF - dtach terminating]\r\n', 'latin1');
const cursorShow = Buffer.from('\x1b[?25h', 'latin1');

export class HolderOutputFilter extends Duplex {
  /** Bytes of the attach prefix still expected at the start (0 once it passed or did not come). */
  private prefixSeen = 0;
  private trailerCut = false;
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
    raw.once('end', () => this.push(null));
    raw.once('error', (error: Error) => this.destroy(error));
    raw.once('close', () => this.destroy());
  }

  override _read(): void {
    this.raw.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Until dtach's client has put the TTY in raw mode (its first output says so), the TTY would
    // echo input itself, ahead of the screen clear this filter looks for at the start.
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
    let out = chunk;
    // The prefix may come split over chunks; anything else first means there is none.
    while (this.prefixSeen < attachPrefix.length && out.length > 0) {
      if (out[0] !== attachPrefix[this.prefixSeen]) {
        // Bytes held back as a possible prefix were output after all.
        const held = attachPrefix.subarray(0, this.prefixSeen);
        this.prefixSeen = attachPrefix.length;
        return this.cutTrailer(Buffer.concat([held, out]));
      }
      this.prefixSeen++;
      out = out.subarray(1);
    }
    if (out.length === 0) return out;
    return this.cutTrailer(out);
  }

  private cutTrailer(chunk: Buffer): Buffer {
    if (this.trailerCut) return startsWith(chunk, cursorShow) ? chunk.subarray(cursorShow.length) : chunk;
    const at = chunk.lastIndexOf(endNotice);
    if (at < 0) return chunk;
    this.trailerCut = true;
    const before = at >= endMove.length && chunk.subarray(at - endMove.length, at).equals(endMove);
    const rest = chunk.subarray(at + endNotice.length);
    return Buffer.concat([
      chunk.subarray(0, before ? at - endMove.length : at),
      startsWith(rest, cursorShow) ? rest.subarray(cursorShow.length) : rest,
    ]);
  }
}

const startsWith = (chunk: Buffer, prefix: Buffer): boolean =>
  chunk.length >= prefix.length && chunk.subarray(0, prefix.length).equals(prefix);
