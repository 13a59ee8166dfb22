/**
 * The arithmetic of file transfers, free of the DOM and the network so it reads on its own: which
 * bytes go in which part, how many parts run at once, when a failed part is tried again, and how
 * progress is told to a person (sizes, speed, remaining time).
 */
import type { MultipartUpload } from '../../../server/protocol/files.js';
import { formatTransferBytes } from '../../../server/protocol/api.js';

/** Parts in flight per file: enough to fill a link, few enough to keep each part's progress steady. */
export const partConcurrency = 4;

/** A part is tried this many times in all (the first try and 3 retries). */
export const maxPartAttempts = 4;

/** Wait before retry `retry` (1-based): 0.5 s, 1 s, 2 s, with up to 20 % jitter from `random`. */
export function retryDelayMs(retry: number, random: () => number = Math.random): number {
  const base = 500 * 2 ** Math.max(0, retry - 1);
  return Math.round(base * (1 + 0.2 * random()));
}

/**
 * Worth another try: the network dropped (status 0), S3 was busy or failed (408, 429, 5xx).
 * A 4xx such as 403 (expired or tampered URL) or 400 (wrong length) fails the same way again.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

export interface PartRange {
  readonly partNumber: number;
  readonly url: string;
  /** Byte offsets into the file, `end` exclusive. */
  readonly start: number;
  readonly end: number;
}

/** The byte range of each presigned part, as the server's ticket defines them. */
export function partRanges(ticket: MultipartUpload, size: number): PartRange[] {
  return ticket.parts.map(({ partNumber, url }) => ({
    partNumber,
    url,
    start: Math.min(size, (partNumber - 1) * ticket.partSize),
    end: Math.min(size, partNumber * ticket.partSize),
  }));
}

/**
 * Runs `task` over `items` with at most `limit` in flight. The first failure stops new work from
 * starting and is what the returned promise rejects with; the caller aborts what is in flight.
 */
export async function runLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await task(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * Speed over the last few seconds (not since the start, which a slow first second would skew
 * for the whole transfer), from samples of the total bytes moved so far.
 */
export class ThroughputMeter {
  private readonly samples: { atMs: number; bytes: number }[] = [];

  constructor(private readonly windowMs = 5_000) {}

  add(totalBytes: number, atMs: number): void {
    this.samples.push({ atMs, bytes: totalBytes });
    while (this.samples.length > 2 && (this.samples[0] as { atMs: number }).atMs < atMs - this.windowMs) {
      this.samples.shift();
    }
  }

  /** Bytes per second, or undefined until there is half a second of history. */
  bytesPerSecond(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.atMs - first.atMs < 500) return undefined;
    return ((last.bytes - first.bytes) * 1000) / (last.atMs - first.atMs);
  }

  /** Whole seconds left for `remainingBytes` at the current speed. */
  secondsLeft(remainingBytes: number): number | undefined {
    const speed = this.bytesPerSecond();
    if (speed === undefined || speed <= 0) return undefined;
    return Math.ceil(remainingBytes / speed);
  }
}

/** `812 B`, `12.3 MB`, `1.2 GB` (decimal units, as disks and S3 count). */
export const formatSize = formatTransferBytes;

export function formatSpeed(bytesPerSecond: number): string {
  return `${formatSize(bytesPerSecond)}/s`;
}

/** `8 s`, `2 min 5 s`, `1 h 4 min`. */
export function formatTimeLeft(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Whole percent, 100 only when every byte is there. */
export function percent(done: number, total: number): number {
  if (total <= 0) return done >= total ? 100 : 0;
  return done >= total ? 100 : Math.min(99, Math.floor((done / total) * 100));
}

/** The one line under a running transfer's bar: `42 % · 12.3 MB/s · 8 s left`. */
export function progressLine(done: number, total: number, meter: ThroughputMeter): string {
  const parts = [`${percent(done, total)} %`];
  const speed = meter.bytesPerSecond();
  if (speed !== undefined) parts.push(formatSpeed(speed));
  const left = meter.secondsLeft(total - done);
  if (left !== undefined && done < total) parts.push(`${formatTimeLeft(left)} left`);
  return parts.join(' · ');
}

/** The folder as typed, tidied for the request: blank means the home itself. */
export function targetDir(typed: string): string {
  const dir = typed.trim();
  return dir === '' ? '~' : dir;
}

/** `~/a/b` + `c` → `~/a/b/c`; the listing's folders are joined the same way for the browser. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** The folder above `~/a/b` is `~/a`; `~` has none. */
export function parentDir(dir: string): string | undefined {
  const trimmed = dir.replace(/\/+$/, '');
  if (trimmed === '~' || trimmed === '' || !trimmed.includes('/')) return undefined;
  const parent = trimmed.slice(0, trimmed.lastIndexOf('/'));
  return parent === '' ? '/' : parent;
}
