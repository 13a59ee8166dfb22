/**
 * A server-side copy of one terminal's screen: a headless xterm.js fed with the same output bytes
 * the pages get, so a page that (re)attaches receives the exact screen and recent scrollback,
 * including whatever was printed while no page was looking. Bounded by its scrollback lines.
 *
 * xterm.js parses writes in time slices of its own, off the output path; bytes it has not parsed
 * yet are counted so the terminal can pause the shell when the mirror falls behind (otherwise a
 * flood with no page attached would queue up in memory).
 *
 * Output waits here while xterm.js parses the last batch. A batch that starts with more plain
 * text lines (printable ASCII, tab, CR, LF) than the screen and scrollback hold is cut to just
 * those lines: xterm.js would end up with exactly the same screen, scrollback and state, since
 * every line they leave is scrolled out and plain text changes nothing else. So `yes` or `cat` of
 * a big log costs the mirror the bytes that stay visible, not all of them, and the prompt after
 * Ctrl+C no longer waits for the mirror to parse the flood that was on its way.
 */
import headless from '@xterm/headless';
import serialize from '@xterm/addon-serialize';

const { Terminal: HeadlessTerminal } = headless;
const { SerializeAddon } = serialize;

export interface ScreenMirrorOptions {
  readonly cols: number;
  readonly rows: number;
  readonly scrollbackLines: number;
  /** Called when the unparsed backlog crosses the high watermark (true) and drains below the low one (false). */
  readonly onBacklog?: (behind: boolean) => void;
}

/**
 * Small, because what the mirror has not parsed delays a repaint after an interrupt: `yes` parses
 * at about 3 MB/s here, so 256 KiB is under 100 ms.
 */
const backlogHighBytes = 256 * 1024;
const backlogLowBytes = 64 * 1024;

/** Printable ASCII, tab, CR and LF: bytes that only put text on lines and move between them. */
const isPlain = (byte: number): boolean =>
  (byte >= 0x20 && byte < 0x7f) || byte === 0x0a || byte === 0x0d || byte === 0x09;

/**
 * Where `data` may start instead, fed to a terminal in the normal buffer with no scroll region
 * and `keepLines` lines of screen and scrollback to fill: just after the line feed that has
 * `keepLines` more plain line feeds after it, all in the plain text `data` starts with (0: none).
 */
export function plainSkip(data: Uint8Array, keepLines: number): number {
  let plain = 0;
  while (plain < data.length && isPlain(data[plain] as number)) plain++;
  let feeds = 0;
  for (let at = plain - 1; at >= 0; at--) {
    if (data[at] !== 0x0a) continue;
    if (feeds++ === keepLines) return at + 1;
  }
  return 0;
}

/** xterm.js's scroll region, which its public API does not show (unknown: no skipping). */
interface BufferMargins {
  readonly _core?: { readonly buffer?: { readonly scrollTop?: unknown; readonly scrollBottom?: unknown } };
}

export class ScreenMirror {
  private readonly terminal: InstanceType<typeof HeadlessTerminal>;
  private readonly serializer = new SerializeAddon();
  private pendingBytes = 0;
  private behind = false;
  private disposed = false;
  /** Written, not yet handed to xterm.js (it is parsing the last batch). */
  private queue: Buffer[] = [];
  private parsing = false;
  /** Bytes written so far, and bytes parsed or skipped so far (snapshots wait for the first). */
  private written = 0;
  private done = 0;
  private waiters: { readonly at: number; readonly resolve: () => void }[] = [];
  private skipped = 0;

  constructor(private readonly options: ScreenMirrorOptions) {
    this.terminal = new HeadlessTerminal({
      cols: options.cols,
      rows: options.rows,
      scrollback: options.scrollbackLines,
      allowProposedApi: true,
    });
    this.terminal.loadAddon(this.serializer);
  }

  /** Bytes of plain floods skipped so far (never parsed: nothing of them would have stayed). */
  get skippedBytes(): number {
    return this.skipped;
  }

  /** Bytes written but not parsed yet. */
  get backlogBytes(): number {
    return this.pendingBytes;
  }

  write(chunk: Buffer): void {
    if (this.disposed || chunk.length === 0) return;
    this.pendingBytes += chunk.length;
    this.written += chunk.length;
    if (!this.behind && this.pendingBytes >= backlogHighBytes) {
      this.behind = true;
      this.options.onBacklog?.(true);
    }
    this.queue.push(chunk);
    this.parseNext();
  }

  private parseNext(): void {
    if (this.parsing || this.disposed || this.queue.length === 0) return;
    let batch = this.queue.length === 1 ? (this.queue[0] as Buffer) : Buffer.concat(this.queue);
    this.queue = [];
    // Everything before has been parsed: the terminal's state is the one this batch starts in.
    const skip = this.plainStart() ? plainSkip(batch, this.keepLines()) : 0;
    if (skip > 0) {
      this.skipped += skip;
      this.parsed(skip);
      batch = batch.subarray(skip);
    }
    this.parsing = true;
    this.terminal.write(batch, () => {
      this.parsing = false;
      this.parsed(batch.length);
      this.parseNext();
    });
  }

  /** Lines a plain stretch must have for everything before it to leave no trace. */
  private keepLines(): number {
    return (this.terminal.options.scrollback ?? this.options.scrollbackLines) + 2 * this.terminal.rows + 1;
  }

  /** The normal buffer with the whole screen as scroll region: plain text only scrolls it. */
  private plainStart(): boolean {
    if (this.terminal.buffer.active.type !== 'normal') return false;
    const buffer = (this.terminal as unknown as BufferMargins)._core?.buffer;
    return buffer?.scrollTop === 0 && buffer.scrollBottom === this.terminal.rows - 1;
  }

  private parsed(bytes: number): void {
    this.pendingBytes -= bytes;
    this.done += bytes;
    if (this.behind && this.pendingBytes < backlogLowBytes) {
      this.behind = false;
      this.options.onBacklog?.(false);
    }
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.at <= this.done);
    this.waiters = this.waiters.filter((w) => w.at > this.done);
    for (const waiter of ready) waiter.resolve();
  }

  resize(cols: number, rows: number): void {
    if (this.disposed) return;
    if (cols === this.terminal.cols && rows === this.terminal.rows) return;
    this.terminal.resize(cols, rows);
  }

  /**
   * The screen and scrollback as one escape sequence stream that repaints them on a fresh
   * terminal (empty when nothing was printed). Waits for the bytes written so far to be parsed.
   */
  async snapshot(): Promise<Buffer> {
    if (this.disposed) return Buffer.alloc(0);
    const at = this.written;
    if (this.done < at) await new Promise<void>((resolve) => this.waiters.push({ at, resolve }));
    if (this.disposed) return Buffer.alloc(0);
    return Buffer.from(this.serializer.serialize({ scrollback: this.options.scrollbackLines }), 'utf8');
  }

  /** Forgets everything (the holder redraws the screen when it is reattached). */
  clear(): void {
    if (this.disposed) return;
    this.terminal.reset();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.queue = [];
    // Nothing more will be parsed: a snapshot waiting for it gets the empty answer.
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters = [];
    this.terminal.dispose();
  }
}
