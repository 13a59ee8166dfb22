/**
 * How far each running download's copy from the home into S3 got, so the page can show a bar
 * while it prepares a large file (a 1 GiB file takes seconds before its GET can start). The page
 * picks the id (`progressId` in the download request) and asks with
 * `GET …/downloads/progress/:progressId`; entries are per user and region, and exist only while
 * the copy runs.
 */
import type { DownloadProgressResponse } from '../protocol/files.js';

export interface ProgressTracker {
  add(bytes: number): void;
  end(): void;
}

interface Entry {
  bytes: number;
  readonly size: number | undefined;
}

export class DownloadProgress {
  private readonly running = new Map<string, Entry>();

  /** Starts following a copy; `size` is unknown for a folder's archive. */
  start(ownerId: string, region: string, progressId: string, size: number | undefined): ProgressTracker {
    const key = keyOf(ownerId, region, progressId);
    const entry: Entry = { bytes: 0, size };
    this.running.set(key, entry);
    return {
      add: (bytes) => {
        entry.bytes += bytes;
      },
      end: () => {
        // A newer download under the same id keeps its own entry.
        if (this.running.get(key) === entry) this.running.delete(key);
      },
    };
  }

  get(ownerId: string, region: string, progressId: string): DownloadProgressResponse | undefined {
    const entry = this.running.get(keyOf(ownerId, region, progressId));
    if (!entry) return undefined;
    return entry.size === undefined ? { bytes: entry.bytes } : { bytes: entry.bytes, size: entry.size };
  }

  get size(): number {
    return this.running.size;
  }
}

const keyOf = (ownerId: string, region: string, progressId: string): string =>
  `${ownerId}\u0000${region}\u0000${progressId}`;
