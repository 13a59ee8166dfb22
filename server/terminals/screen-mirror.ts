/**
 * A server-side copy of one terminal's screen: a headless xterm.js fed with the same output bytes
 * the pages get, so a page that (re)attaches receives the exact screen and recent scrollback,
 * including whatever was printed while no page was looking. Bounded by its scrollback lines.
 *
 * xterm.js parses writes in time slices of its own, off the output path; bytes it has not parsed
 * yet are counted so the terminal can pause the shell when the mirror falls behind (otherwise a
 * flood with no page attached would queue up in memory).
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

export class ScreenMirror {
  private readonly terminal: InstanceType<typeof HeadlessTerminal>;
  private readonly serializer = new SerializeAddon();
  private pendingBytes = 0;
  private behind = false;
  private disposed = false;

  constructor(private readonly options: ScreenMirrorOptions) {
    this.terminal = new HeadlessTerminal({
      cols: options.cols,
      rows: options.rows,
      scrollback: options.scrollbackLines,
      allowProposedApi: true,
    });
    this.terminal.loadAddon(this.serializer);
  }

  /** Bytes written but not parsed yet. */
  get backlogBytes(): number {
    return this.pendingBytes;
  }

  write(chunk: Buffer): void {
    if (this.disposed || chunk.length === 0) return;
    this.pendingBytes += chunk.length;
    if (!this.behind && this.pendingBytes >= backlogHighBytes) {
      this.behind = true;
      this.options.onBacklog?.(true);
    }
    this.terminal.write(chunk, () => {
      this.pendingBytes -= chunk.length;
      if (this.behind && this.pendingBytes < backlogLowBytes) {
        this.behind = false;
        this.options.onBacklog?.(false);
      }
    });
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
    await new Promise<void>((resolve) => this.terminal.write('', resolve));
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
    this.terminal.dispose();
  }
}
