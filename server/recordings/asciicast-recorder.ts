/**
 * Writes one terminal's session as an asciicast v2 file (the asciinema format: a JSON header
 * line, then one `[seconds, code, data]` line per event), so existing players and tools read it.
 *
 * It must never slow or break the terminal: the terminal's output path only appends a line to
 * an in-memory queue; a background loop writes the queue to the file. When the queue outgrows
 * its bound (the disk is slower than the shell) or a write fails (disk full), events are
 * dropped from then on and the recording is marked incomplete, reported once. At the size bound
 * a final marker event (`m`) says where and why the recording was cut, and recording stops.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

export type RecordingProblem = 'overflow' | 'write-failed' | 'size-limit';

export interface AsciicastRecorderOptions {
  readonly path: string;
  readonly cols: number;
  readonly rows: number;
  /** Epoch ms of the start (the header's `timestamp`, in seconds). */
  readonly startedAt: number;
  readonly title?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Also record what the user typed (`i` events). */
  readonly input: boolean;
  /** The file never grows past this many bytes (the cut marker included). */
  readonly maxBytes: number;
  /** Events waiting for the disk, in bytes, before they are dropped. */
  readonly maxQueueBytes: number;
  /** Monotonic milliseconds; `performance.now` unless a test drives the clock. */
  readonly clock?: () => number;
  /** Called at most once per kind. */
  readonly onProblem?: (problem: RecordingProblem, error?: unknown) => void;
}

export interface RecordingResult {
  /** Bytes in the file. */
  readonly bytes: number;
  /** False when events were dropped or the size bound cut the recording. */
  readonly complete: boolean;
  readonly problems: readonly RecordingProblem[];
}

/** The cut marker's text, which a player shows at the cut (and a test looks for). */
export const sizeLimitMarker = 'Recording stopped: size limit reached';
/** Room kept at the size bound for the cut marker's line. */
const markerReserve = 128;

export class AsciicastRecorder {
  private readonly clock: () => number;
  private readonly startedAtMs: number;
  private readonly outputDecoder = new StringDecoder('utf8');
  private readonly inputDecoder = new StringDecoder('utf8');
  private queue: string[] = [];
  private queuedBytes = 0;
  /** Bytes written plus queued: what the file will hold. */
  private bytes = 0;
  private written = 0;
  private file: Promise<FileHandle | undefined>;
  private flushing: Promise<void> | undefined;
  private stopped = false;
  private closing: Promise<RecordingResult> | undefined;
  private readonly problems = new Set<RecordingProblem>();

  constructor(private readonly options: AsciicastRecorderOptions) {
    this.clock = options.clock ?? (() => performance.now());
    this.startedAtMs = this.clock();
    const header = {
      version: 2,
      width: options.cols,
      height: options.rows,
      timestamp: Math.floor(options.startedAt / 1000),
      ...(options.env ? { env: options.env } : {}),
      ...(options.title ? { title: options.title } : {}),
    };
    this.enqueue(`${JSON.stringify(header)}\n`);
    this.file = open(options.path, 'wx', 0o600).catch((error: unknown) => {
      this.fail('write-failed', error);
      return undefined;
    });
  }

  /**
   * Output the shell printed (raw bytes; a character split between chunks is kept whole).
   * `seconds` since the start, when the event was seen elsewhere (a writer thread); else now.
   */
  output(chunk: Buffer, seconds?: number): void {
    if (this.stopped) return;
    const text = this.outputDecoder.write(chunk);
    if (text.length > 0) this.event('o', text, seconds);
  }

  /** What the user typed; ignored unless input recording is on. */
  input(chunk: Buffer, seconds?: number): void {
    if (this.stopped || !this.options.input) return;
    const text = this.inputDecoder.write(chunk);
    if (text.length > 0) this.event('i', text, seconds);
  }

  resize(cols: number, rows: number, seconds?: number): void {
    if (this.stopped) return;
    this.event('r', `${cols}x${rows}`, seconds);
  }

  /** Bytes the file will hold once the queue is written. */
  get size(): number {
    return this.bytes;
  }

  get complete(): boolean {
    return this.problems.size === 0;
  }

  /** Writes what is queued and closes the file. Idempotent. */
  close(): Promise<RecordingResult> {
    this.closing ??= (async () => {
      this.stopped = true;
      await this.flush();
      const file = await this.file;
      await file?.close().catch((error: unknown) => this.fail('write-failed', error));
      return { bytes: this.written, complete: this.complete, problems: [...this.problems] };
    })();
    return this.closing;
  }

  private event(code: 'o' | 'i' | 'r' | 'm', data: string, at?: number): void {
    const seconds = at ?? (this.clock() - this.startedAtMs) / 1000;
    const line = `[${seconds.toFixed(6)}, "${code}", ${JSON.stringify(data)}]\n`;
    // Characters, not bytes, for the common ASCII case; exact bytes only near the bound.
    const length = line.length;
    const near = this.bytes + length * 3 + markerReserve > this.options.maxBytes;
    if (near && this.bytes + Buffer.byteLength(line) + markerReserve > this.options.maxBytes) {
      this.cut(seconds);
      return;
    }
    if (this.queuedBytes + length > this.options.maxQueueBytes) {
      this.fail('overflow');
      return;
    }
    this.enqueue(line);
  }

  private cut(seconds: number): void {
    const marker = `[${seconds.toFixed(6)}, "m", ${JSON.stringify(sizeLimitMarker)}]\n`;
    if (this.bytes + Buffer.byteLength(marker) <= this.options.maxBytes) this.enqueue(marker);
    this.problems.add('size-limit');
    this.options.onProblem?.('size-limit');
    this.stopped = true;
  }

  private enqueue(line: string): void {
    const bytes = Buffer.byteLength(line);
    this.queue.push(line);
    this.queuedBytes += line.length;
    this.bytes += bytes;
    this.flushing ??= this.drain();
  }

  /** Waits until everything queued so far is on disk (or dropped). */
  private async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** The background writer: one write per turn with everything queued meanwhile. */
  private async drain(): Promise<void> {
    // Let the output path queue a batch first: one write per event would be slow.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      const file = await this.file;
      while (this.queue.length > 0) {
        const batch = this.queue.join('');
        this.queue = [];
        this.queuedBytes = 0;
        if (!file) continue;
        const data = Buffer.from(batch);
        await file.write(data);
        this.written += data.length;
      }
    } catch (error) {
      this.fail('write-failed', error);
    } finally {
      this.flushing = undefined;
      if (this.queue.length > 0 && !this.problems.has('write-failed')) this.flushing = this.drain();
    }
  }

  /**
   * Drops every event from now on and reports the problem once. What is queued still goes to
   * disk after an overflow (whole lines, so the file stays valid); after a failed write it cannot.
   */
  private fail(problem: 'overflow' | 'write-failed', error?: unknown): void {
    this.stopped = true;
    if (problem === 'write-failed') {
      this.queue = [];
      this.queuedBytes = 0;
    }
    if (this.problems.has(problem)) return;
    this.problems.add(problem);
    this.options.onProblem?.(problem, error);
  }
}
