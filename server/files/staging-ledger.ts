/**
 * What each user has in the staging buckets: the bound that keeps one user from filling the
 * host's disk through Cove (a sparse file costs nothing in the home, but every download of it
 * stages its full length). Every staged transfer is an entry from before its first byte moves
 * until its objects are gone: an upload from its URLs until it is saved or cancelled, a download
 * from the request until its copy is fetched or expires, and (on an S3 that cannot revoke URLs) a
 * finished upload until its URLs expire.
 *
 * `StagingLedger` is the seam: this in-memory ledger serves one Cove instance (the upload records
 * it sits beside are in the store). A ledger in the Store (one row per entry, the checks in one
 * transaction) makes the bounds hold across instances without touching its callers.
 */
import { errors } from '../errors.js';
import { formatHomeBytes } from '../protocol/api.js';

export type StagedKind = 'upload' | 'download' | 'closed-upload';

export interface StagedEntry {
  /** The upload id, or the download's object key. */
  readonly id: string;
  readonly ownerId: string;
  readonly region: string;
  readonly kind: StagedKind;
  /** Counted against the owner's bound. */
  readonly bytes: number;
  /** A download still being copied into S3 (counts against the concurrent-download bound). */
  readonly copying: boolean;
  /** Epoch ms after which the objects are deleted and the entry stops counting; none: until removed. */
  readonly expiresAt?: number;
  /** The staging objects to delete when the entry ends. */
  readonly keys: readonly string[];
}

export interface StagingLimits {
  readonly maxBytesPerUser: number;
  readonly maxCopyingDownloadsPerUser: number;
}

export interface StagingUsage {
  readonly bytes: number;
  readonly copyingDownloads: number;
}

export interface StagingLedger {
  /** Adds the entries all or none; refuses when the owner's bounds would be passed. */
  add(entries: readonly StagedEntry[]): Promise<void>;
  /** Counts `bytes` more for an entry (an archive as it is written); refuses past the bound. */
  grow(id: string, bytes: number): Promise<void>;
  update(
    id: string,
    change: Partial<Pick<StagedEntry, 'kind' | 'bytes' | 'copying' | 'expiresAt'>>,
  ): Promise<void>;
  /** Removes an entry; returns it when it was there. */
  remove(id: string): Promise<StagedEntry | undefined>;
  get(id: string): Promise<StagedEntry | undefined>;
  /** Removes and returns the entries expired at `now` (the caller deletes their objects). */
  takeExpired(now: number): Promise<StagedEntry[]>;
  list(kind: StagedKind): Promise<StagedEntry[]>;
  usage(ownerId: string): Promise<StagingUsage>;
}

/** One instance's ledger. Each method checks and changes in one synchronous step. */
export class MemoryStagingLedger implements StagingLedger {
  private readonly entries = new Map<string, StagedEntry>();

  constructor(private readonly limits: StagingLimits) {}

  async add(entries: readonly StagedEntry[]): Promise<void> {
    const first = entries[0];
    if (!first) return;
    const usage = this.usageNow(first.ownerId);
    const needed = entries.reduce((sum, e) => sum + e.bytes, 0);
    const copying = entries.filter((e) => e.copying).length;
    if (copying > 0 && usage.copyingDownloads + copying > this.limits.maxCopyingDownloadsPerUser)
      throw errors.filesTooManyDownloads(this.limits.maxCopyingDownloadsPerUser);
    this.checkBytes(usage.bytes, needed, Math.max(...entries.map((e) => e.bytes)));
    for (const entry of entries) this.entries.set(entry.id, entry);
  }

  async grow(id: string, bytes: number): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.checkBytes(
      this.usageNow(entry.ownerId).bytes - entry.bytes,
      entry.bytes + bytes,
      entry.bytes + bytes,
    );
    this.entries.set(id, { ...entry, bytes: entry.bytes + bytes });
  }

  async update(
    id: string,
    change: Partial<Pick<StagedEntry, 'kind' | 'bytes' | 'copying' | 'expiresAt'>>,
  ): Promise<void> {
    const entry = this.entries.get(id);
    if (entry) this.entries.set(id, { ...entry, ...change });
  }

  async remove(id: string): Promise<StagedEntry | undefined> {
    const entry = this.entries.get(id);
    this.entries.delete(id);
    return entry;
  }

  async get(id: string): Promise<StagedEntry | undefined> {
    return this.entries.get(id);
  }

  async takeExpired(now: number): Promise<StagedEntry[]> {
    const expired = [...this.entries.values()].filter((e) => e.expiresAt !== undefined && e.expiresAt <= now);
    for (const entry of expired) this.entries.delete(entry.id);
    return expired;
  }

  async list(kind: StagedKind): Promise<StagedEntry[]> {
    return [...this.entries.values()].filter((e) => e.kind === kind);
  }

  async usage(ownerId: string): Promise<StagingUsage> {
    return this.usageNow(ownerId);
  }

  private usageNow(ownerId: string): StagingUsage {
    let bytes = 0;
    let copyingDownloads = 0;
    for (const entry of this.entries.values()) {
      if (entry.ownerId !== ownerId) continue;
      bytes += entry.bytes;
      if (entry.copying) copyingDownloads++;
    }
    return { bytes, copyingDownloads };
  }

  /** One transfer over the whole bound is too large whatever else is staged; else the others hold it. */
  private checkBytes(othersBytes: number, neededBytes: number, largestBytes: number): void {
    const limit = this.limits.maxBytesPerUser;
    if (largestBytes > limit) throw errors.filesTooLarge(limit, formatHomeBytes(limit));
    if (othersBytes + neededBytes > limit)
      throw errors.filesStagingFull(
        othersBytes,
        neededBytes,
        limit,
        formatHomeBytes(othersBytes),
        formatHomeBytes(limit),
      );
  }
}
