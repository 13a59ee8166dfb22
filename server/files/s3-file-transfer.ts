/**
 * File transfer through a staging S3 bucket (`app.files`). The bytes never pass through Cove's
 * HTTP server: the page PUTs to presigned URLs, then the server streams the object from S3 into
 * the container through the `cove-files` helper (as the user), and the other way for downloads.
 *
 * Every size check happens before anything moves: the per-file limit, then the home's free space
 * (minus what this user's unfinished uploads there already claim). The declared size is then
 * enforced three times: each presigned PUT signs its Content-Length, HeadObject must show it, and
 * the helper refuses more or fewer bytes. Staging objects are deleted after use, also on failure;
 * the sweep (staging-sweep.ts) removes what a crash left behind.
 *
 * A large upload is not an S3 multipart upload: each part is its own staging object
 * (`<user>/<upload>/part-00001`, ...), streamed into the helper one after the other. Assembling a
 * multipart upload costs S3 a copy of every byte before Cove can read the first one (s3rver took
 * as long as the upload itself).
 *
 * The write into the home starts while the page is still sending: the page reports each stored
 * part (`reportPart`), S3 confirms its size and ETag, and the helper takes the parts in order as
 * they come. The last part is held back until `complete`, so the file appears (the helper renames
 * its temp file) only once the page said it is done. This early write is only a head start: if it
 * gives up (no part for `earlyWriteIdleMs`, a cancel) or the page's ETags at `complete` differ from
 * the reported ones, `complete` writes the file afresh from the staged parts.
 *
 * Everything staged counts against its owner's bounds (staging-ledger.ts) before its first byte
 * moves: bytes per user (an upload's declared size, a download's full length, a folder's archive
 * as it is written) and downloads copied at once; a download's copy goes when fetched from the
 * embedded S3 or after `files.downloadExpiryS`, and the embedded S3's disk keeps
 * `files.stagingReserveBytes` free.
 *
 * Upload records live in the store (`store.uploads`), so a page whose requests a proxy spreads
 * over several instances can report parts, complete or cancel on any of them (with a configured
 * S3: the embedded one is one instance's own). Completing claims the record first, so one
 * instance writes the file; the answer stays in the store for a repeated `complete`. The early
 * write is the optimisation of the instance that got part 1; another instance that gets
 * `complete` writes the file afresh from the staged parts.
 *
 * S3 that stops moving bytes mid-transfer fails the transfer within `files.s3TimeoutMs` with a
 * 503 (stall-deadline.ts); the helper then removes its temp file. An upload whose completion
 * failed that way keeps its staged parts, so `complete` can simply be called again.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Upload } from '@aws-sdk/lib-storage';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { CoveError, errors } from '../errors.js';
import type { EnvironmentOwner } from '../environments/environment-service.js';
import { formatDecimalBytes } from '../protocol/api.js';
import type {
  CompleteUploadRequest,
  CompleteUploadResponse,
  DownloadResponse,
  FileListing,
  UploadRequest,
  UploadResponse,
  UploadTicket,
} from '../protocol/files.js';
import { contentDisposition } from './content-disposition.js';
import { DownloadProgress } from './download-progress.js';
import type { CoveFilesHelper } from './cove-files-helper.js';
import { HelperError, helperErrorToCove } from './cove-files-helper.js';
import { fileNameProblem, isHomePath, parseHomePath, type HomePath } from './file-names.js';
import { PartGate, isGateStop, PartGateClosed } from './part-gate.js';
import { MemoryStagingLedger, type StagingLedger } from './staging-ledger.js';
import type { UploadRepository } from '../store/store.js';
import { S3StallError, readWithDeadline, writeWithDeadline } from './stall-deadline.js';

/** One region's staging bucket. */

/**
 * The presigned PUT the page sends one staged part (or a whole small file) with. Content-Length is
 * signed: S3 refuses a PUT of any other size. `signingDate` is for tests of expired URLs only.
 */
export function presignPartPut(
  client: S3Client,
  bucket: string,
  key: string,
  size: number,
  expiresIn: number,
  signingDate?: Date,
): Promise<string> {
  return getSignedUrl(client, new PutObjectCommand({ Bucket: bucket, Key: key, ContentLength: size }), {
    expiresIn,
    signableHeaders: new Set(['content-length']),
    ...(signingDate ? { signingDate } : {}),
  });
}

export interface StagingBucket {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  /** The embedded S3 on this host's disk; absent for a configured S3. */
  readonly local?: LocalStaging;
}

/** What only an S3 on Cove's own disk can do. */
export interface LocalStaging {
  /** Refuses PUTs to keys directly under `keyPrefix` for `forMs`: the URLs of a closed upload. */
  refusePuts(keyPrefix: string, forMs: number): void;
  /** Free bytes on the disk that holds the staged objects. */
  freeBytes(): Promise<number>;
}

export interface S3ClientSettings {
  readonly region: string;
  readonly endpoint?: string;
  readonly forcePathStyle?: boolean;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string };
  readonly timeoutMs: number;
}

/**
 * The only way Cove makes S3 clients. The checksum settings are not optional: with the SDK's
 * defaults s3rver stores corrupted objects, and presigned PUTs carry a checksum of an empty body.
 */
export function createS3Client(settings: S3ClientSettings): S3Client {
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.forcePathStyle !== undefined ? { forcePathStyle: settings.forcePathStyle } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
    // Idle timeouts, not totals: a 1 GiB stream is fine as long as bytes keep moving.
    requestHandler: { connectionTimeout: settings.timeoutMs, requestTimeout: settings.timeoutMs },
  });
}

interface StagedPart {
  readonly key: string;
  readonly size: number;
}

interface UploadRecord {
  readonly id: string;
  readonly ownerId: string;
  readonly region: string;
  readonly dir: HomePath;
  readonly name: string;
  readonly size: number;
  readonly replace: boolean;
  readonly createdAt: number;
  /** `<prefix><user>/<upload>/`: every part's key starts with it. */
  readonly keyPrefix: string;
  /** In order; one for a single PUT. */
  readonly parts: readonly StagedPart[];
  /** The ticket had parts (`complete` may then list their ETags). */
  readonly multipart: boolean;
  completing: boolean;
  /** Parts the page reported stored and S3 confirmed: part number → ETag (with quotes). */
  readonly stored: Map<number, string>;
  /** The write into the home that started while parts were arriving; tried once per upload. */
  early?: EarlyWrite;
  earlyTried: boolean;
}

interface EarlyWrite {
  readonly gate: PartGate;
  /** Never rejects unhandled; `settled` once the helper is done either way. */
  readonly result: Promise<CompleteUploadResponse>;
  settled: boolean;
}

interface FinishedUpload {
  readonly ownerId: string;
  readonly region: string;
  readonly result: CompleteUploadResponse;
  readonly at: number;
}

export interface CompletedUpload {
  readonly saved: CompleteUploadResponse;
  /** This upload had already finished: the page asked again because the first answer was lost. */
  readonly repeated: boolean;
}

export interface TransferDone {
  readonly direction: 'upload' | 'download';
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export interface S3FileTransferOptions {
  readonly config: Pick<Config, 'files' | 'regions'>;
  readonly staging: ReadonlyMap<string, StagingBucket>;
  readonly helper: CoveFilesHelper;
  /** Gets the user's environment running (the helper runs in it). */
  readonly ensure: (owner: EnvironmentOwner, region: string) => Promise<unknown>;
  readonly log: FastifyBaseLogger;
  readonly now?: () => number;
  /** Per-user staged bytes and downloads; an in-memory ledger for one instance when absent. */
  readonly ledger?: StagingLedger;
  /** Upload records every instance sees (the store's), so any instance can take a page's request. */
  readonly uploads: UploadRepository;
}

/** Bounds the upload records one user can leave pending, on all instances (kept until swept). */
const maxPendingPerUser = 200;
/** The slowest transfer speed the exec timeouts allow, in bytes per second. */
const minBytesPerS = 2 * 1024 * 1024;
/** HeadObject and DeleteObject calls in flight for one upload's parts. */
const partCallConcurrency = 8;
/** How long an early write waits for the page's next part before it gives up (and `complete` starts afresh). */
const earlyWriteIdleMs = 120_000;
/** How long a finished upload's answer is kept for a `complete` that comes again (its answer was lost). */
const finishedKeepMs = 15 * 60_000;
/** Bounds the finished answers kept (the oldest go first). */
const maxFinished = 2000;
/** How often staged objects past their expiry are deleted. */
const expiryTickMs = 5000;
/**
 * An upload not completed this long after its URLs expired is abandoned (its tab was closed): it
 * stops holding its owner's staging bound then, not a retention period later.
 */
const abandonedAfterMs = 3600_000;
/** A presigned URL checked just before its expiry may still be writing a moment after it. */
const urlGraceMs = 60_000;
/** Bytes of an archive between two checks of the staging disk's reserve. */
const diskCheckEveryBytes = 64 * 1024 * 1024;
/** Failures after which `complete` can be called again: the staged parts are kept. */
const retryableCodes = new Set(['COVE_ERR_FILES_UNAVAILABLE', 'COVE_ERR_FILES_ENVIRONMENT_UNAVAILABLE']);

const partKey = (uploadKey: string, partNumber: number): string =>
  `${uploadKey}/part-${String(partNumber).padStart(5, '0')}`;

interface SdkError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

export class S3FileTransfer {
  private readonly records = new Map<string, UploadRecord>();
  /** Upload id → the answer `complete` gave, so asking again gets it again (oldest first). */
  private readonly finished = new Map<string, FinishedUpload>();
  /** Running downloads' copies into S3, for the page's progress bar. */
  readonly progress = new DownloadProgress();
  /** Region → why file transfer is off there (a misconfigured bucket). */
  private readonly disabled = new Map<string, string[]>();
  private readonly expiryTimer: NodeJS.Timeout;
  private readonly now: () => number;
  /** What each user has staged: bounds bytes and concurrent downloads per user. */
  readonly ledger: StagingLedger;

  constructor(private readonly options: S3FileTransferOptions) {
    this.now = options.now ?? Date.now;
    const { files } = options.config;
    this.ledger =
      options.ledger ??
      new MemoryStagingLedger({
        maxBytesPerUser: files.maxStagedBytesPerUser,
        maxCopyingDownloadsPerUser: files.maxConcurrentDownloadsPerUser,
      });
    this.expiryTimer = setInterval(() => {
      this.expireStaged().catch((error: unknown) =>
        options.log.warn({ err: error }, 'deleting expired staging objects failed; will retry'),
      );
    }, expiryTickMs);
    this.expiryTimer.unref();
  }

  /** Turns file transfer off (or back on with `undefined`) in a region, after a failed check. */
  setProblems(region: string, problems: readonly string[] | undefined): void {
    if (problems && problems.length > 0) this.disabled.set(region, [...problems]);
    else this.disabled.delete(region);
  }

  problems(region: string): readonly string[] | undefined {
    return this.disabled.get(region);
  }

  async createUploads(
    owner: EnvironmentOwner,
    region: string,
    request: UploadRequest,
  ): Promise<UploadResponse> {
    const { files } = this.options.config;
    const dir = parseHomePath(request.dir);
    if (!isHomePath(dir)) throw errors.filesInvalidPath(dir.problem);
    for (const file of request.files) {
      const problem = fileNameProblem(file.name);
      if (problem) throw errors.filesInvalidName(problem);
      if (file.size > files.maxFileBytes)
        throw errors.filesTooLarge(files.maxFileBytes, formatDecimalBytes(files.maxFileBytes, 10));
    }
    // Abandoned ones no longer count, even before the sweep deletes their records.
    const abandonedBefore = this.now() - files.presignExpiryS * 1000 - abandonedAfterMs;
    const pending = (await this.options.uploads.pendingFor(owner.id)).filter(
      (r) => r.createdAt >= abandonedBefore,
    );
    if (pending.length + request.files.length > maxPendingPerUser)
      throw errors.filesTooManyUploads(maxPendingPerUser);
    const planned = request.files.map((file) => {
      const id = randomBytes(16).toString('base64url');
      const uploadKey = `${this.stagingOf(region).prefix}${owner.id}/${id}`;
      const multipart = file.size > files.multipartThresholdBytes;
      const partSize = multipart ? files.partSizeBytes : file.size;
      const partCount = multipart ? Math.ceil(file.size / partSize) : 1;
      const parts: StagedPart[] = [];
      for (let partNumber = 1; partNumber <= partCount; partNumber++)
        parts.push({
          key: partKey(uploadKey, partNumber),
          size: Math.min(partSize, file.size - (partNumber - 1) * partSize),
        });
      return { file, id, keyPrefix: `${uploadKey}/`, multipart, partSize, parts };
    });
    const needed = request.files.reduce((sum, f) => sum + f.size, 0);
    // Counted from the first URL: the page may PUT every part before Cove hears of it again.
    await this.ledger.add(
      planned.map((p) => ({
        id: p.id,
        ownerId: owner.id,
        region,
        kind: 'upload' as const,
        bytes: p.file.size,
        copying: false,
        keys: p.parts.map((part) => part.key),
      })),
    );
    try {
      return await this.signUploads(owner, region, request, dir, planned, pending, needed);
    } catch (error) {
      for (const p of planned) {
        this.records.delete(p.id);
        await this.ledger.remove(p.id);
        await this.options.uploads.delete(p.id).catch(() => false);
      }
      throw error;
    }
  }

  private async signUploads(
    owner: EnvironmentOwner,
    region: string,
    request: UploadRequest,
    dir: HomePath,
    planned: readonly {
      file: UploadRequest['files'][number];
      id: string;
      keyPrefix: string;
      multipart: boolean;
      partSize: number;
      parts: StagedPart[];
    }[],
    pending: readonly { readonly region: string; readonly size: number }[],
    needed: number,
  ): Promise<UploadResponse> {
    const { files } = this.options.config;
    const staging = await this.usableStaging(region);
    await this.checkDisk(staging, needed);

    await this.ensure(owner, region);
    const key = { ownerId: owner.id, region };
    const checked = await this.helperCall(dir.display, () => this.options.helper.checkDir(key, dir.display));
    const claimed = pending.filter((r) => r.region === region).reduce((sum, r) => sum + r.size, 0);
    const free = Math.max(0, checked.freeBytes - claimed);
    if (needed > free)
      throw errors.filesHomeFull(free, needed, formatDecimalBytes(free, 10), formatDecimalBytes(needed, 10));

    const expiresIn = files.presignExpiryS;
    const uploads: UploadTicket[] = [];
    for (const { file, id, keyPrefix, multipart, partSize, parts } of planned) {
      const urls = [];
      for (const [i, part] of parts.entries()) {
        const partNumber = i + 1;
        const url = await presignPartPut(staging.client, staging.bucket, part.key, part.size, expiresIn);
        urls.push({ partNumber, url });
      }
      const record: UploadRecord = {
        id,
        ownerId: owner.id,
        region,
        dir,
        name: file.name,
        size: file.size,
        replace: request.onConflict === 'replace',
        createdAt: this.now(),
        keyPrefix,
        parts,
        multipart,
        completing: false,
        stored: new Map(),
        earlyTried: false,
      };
      await this.options.uploads.save({ ...record, dir: dir.display });
      this.records.set(id, record);
      uploads.push(
        multipart
          ? { id, name: file.name, partSize, parts: urls }
          : { id, name: file.name, url: urls[0]?.url ?? '' },
      );
    }
    return { uploads, expiresAt: new Date(this.now() + expiresIn * 1000).toISOString() };
  }

  /**
   * A part the page stored (multipart uploads only): S3 must show its exact length and the ETag the
   * page saw. Part 1 starts the early write into the home; later parts let it go on.
   */
  async reportPart(
    owner: EnvironmentOwner,
    region: string,
    id: string,
    partNumber: number,
    etag: string,
  ): Promise<void> {
    const { record, completing } = await this.ownRecord(owner, region, id);
    if (!record.multipart) throw errors.filesPartsInvalid('this upload is a single PUT and has no parts');
    const part = record.parts[partNumber - 1];
    if (!part || partNumber < 1)
      throw errors.filesPartsInvalid(`there is no part ${partNumber} (parts 1 to ${record.parts.length})`);
    if (completing) throw errors.filesUploadBusy();
    // Its HeadObject notices S3 down: no HeadBucket first.
    const staging = this.stagingOf(region);
    const head = await this.s3(() =>
      staging.client.send(new HeadObjectCommand({ Bucket: staging.bucket, Key: part.key }), this.signal()),
    );
    if (head.ContentLength !== part.size)
      throw errors.filesPartsInvalid(
        `part ${partNumber} holds ${head.ContentLength ?? 0} bytes, not ${part.size}`,
      );
    if (normalizeEtag(head.ETag ?? '') !== normalizeEtag(etag))
      throw errors.filesPartsInvalid(`part ${partNumber} is not the one that was uploaded`);
    // Cancelled or being completed meanwhile: `complete` checks every part itself.
    if (this.records.get(id) !== record || record.completing) return;
    record.stored.set(partNumber, normalizeEtag(etag));
    if (record.early) this.openStored(record, record.early.gate);
    else if (!record.earlyTried && record.stored.has(1)) this.startEarlyWrite(staging, record, owner);
  }

  /**
   * Checks every staged part and streams them, in order, into the home (or lets the early write
   * finish). The parts are deleted afterwards, except when S3 or the environment was unavailable:
   * then `complete` can be retried. A `complete` for an upload that already finished (the page
   * never got the answer) gets the same answer again, for `finishedKeepMs`.
   */
  async completeUpload(
    owner: EnvironmentOwner,
    region: string,
    id: string,
    request: CompleteUploadRequest,
  ): Promise<CompletedUpload> {
    const done = this.finished.get(id);
    if (done && done.ownerId === owner.id && done.region === region && this.now() - done.at < finishedKeepMs)
      return { saved: done.result, repeated: true };
    // Finished by another instance: its answer is in the store.
    const row = await this.options.uploads.get(id);
    if (
      row?.result &&
      row.finishedAt !== null &&
      row.ownerId === owner.id &&
      row.region === region &&
      this.now() - row.finishedAt < finishedKeepMs
    )
      return { saved: row.result, repeated: true };
    const { record, completing } = await this.ownRecord(owner, region, id);
    // The claim keeps every other instance (and this one) from completing or cancelling it too.
    if (completing || !(await this.options.uploads.claim(id))) throw errors.filesUploadBusy();
    record.completing = true;
    let staging: StagingBucket | undefined;
    let saved: CompleteUploadResponse | undefined;
    let keep = false;
    try {
      staging = await this.usableStaging(region);
      const etags = this.expectedEtags(record, request);
      saved = await this.finishEarlyWrite(staging, record, etags);
      if (!saved) {
        await this.stopEarlyWrite(record, 'complete writes the file afresh');
        await this.checkParts(staging, record, etags);
        saved = await this.writeParts(staging, record, owner);
      }
      this.remember(record, saved);
      return { saved, repeated: false };
    } catch (error) {
      keep = error instanceof CoveError && retryableCodes.has(error.code);
      throw error;
    } finally {
      await this.stopEarlyWrite(record, 'the upload was completed');
      // Without a usable bucket nothing was touched: the upload stays as it was.
      if (keep || !staging) {
        record.completing = false;
        await this.options.uploads
          .unclaim(id)
          .catch((error: unknown) => this.options.log.warn({ err: error }, 'upload claim not released'));
      } else {
        // The store first: until it says finished, this instance's record answers "busy".
        const { uploads } = this.options;
        await (saved ? uploads.finish(id, saved, this.now()) : uploads.delete(id)).catch((error: unknown) =>
          this.options.log.warn({ err: error }, 'upload record not updated; the sweep removes it'),
        );
        this.records.delete(id);
        await this.closeUpload(staging, record);
      }
    }
  }

  private remember(record: UploadRecord, result: CompleteUploadResponse): void {
    const at = this.now();
    for (const [id, done] of this.finished) {
      if (this.finished.size < maxFinished && at - done.at < finishedKeepMs) break;
      this.finished.delete(id);
    }
    this.finished.set(record.id, { ownerId: record.ownerId, region: record.region, result, at });
  }

  /**
   * The early write's result, when it is still running and read the very parts `complete` names;
   * `undefined` when `complete` must write afresh (no early write, it gave up, other ETags).
   */
  private async finishEarlyWrite(
    staging: StagingBucket,
    record: UploadRecord,
    etags: ReadonlyMap<number, string>,
  ): Promise<CompleteUploadResponse | undefined> {
    const early = record.early;
    if (!early || early.settled) return undefined;
    const same = [...record.stored].every(([n, etag]) => etags.size === 0 || etags.get(n) === etag);
    if (!same) return undefined;
    await this.checkParts(staging, record, etags, (n) => !record.stored.has(n));
    early.gate.openAll();
    try {
      return await early.result;
    } catch (error) {
      // It stopped waiting just before `complete` came: start over.
      if (isGateStop(error)) return undefined;
      throw error;
    }
  }

  private startEarlyWrite(staging: StagingBucket, record: UploadRecord, owner: EnvironmentOwner): void {
    record.earlyTried = true;
    const gate = new PartGate(earlyWriteIdleMs);
    this.openStored(record, gate);
    const early: EarlyWrite = {
      gate,
      result: this.writeParts(staging, record, owner, gate),
      settled: false,
    };
    early.result.then(
      () => (early.settled = true),
      (error: unknown) => {
        early.settled = true;
        if (!isGateStop(error))
          this.options.log.info({ err: error }, 'early upload write failed; complete writes afresh');
      },
    );
    record.early = early;
  }

  /** Opens the reported parts, but never the last one: it waits for `complete`. */
  private openStored(record: UploadRecord, gate: PartGate): void {
    for (const n of record.stored.keys()) if (n < record.parts.length) gate.open(n);
  }

  /** Stops an early write that is still waiting for parts; resolves once the helper is gone. */
  private async stopEarlyWrite(record: UploadRecord, reason: string): Promise<void> {
    const early = record.early;
    if (!early) return;
    record.early = undefined;
    early.gate.close(new PartGateClosed(reason));
    await early.result.catch(() => undefined);
  }

  /**
   * Streams the parts, in order, into the helper, which writes the file atomically. With a `gate`,
   * each part is read once the gate lets it through (the early write); the exec may then also
   * wait for the page.
   */
  private async writeParts(
    staging: StagingBucket,
    record: UploadRecord,
    owner: EnvironmentOwner,
    gate?: PartGate,
  ): Promise<CompleteUploadResponse> {
    await this.ensure(owner, record.region);
    let streamFailed: unknown;
    const input = Readable.from(
      this.partBytes(staging, record, gate, (error) => (streamFailed ??= error)),
      { objectMode: false, highWaterMark: 1024 * 1024 },
    );
    const key = { ownerId: owner.id, region: record.region };
    // The gate bounds each wait for the page; the exec's deadline must not cut it shorter.
    const waitMs = gate ? record.parts.length * earlyWriteIdleMs : 0;
    const written = await this.helperCall(record.dir.display, () =>
      this.options.helper.write(key, record.dir.display, record.name, record.size, input, {
        replace: record.replace,
        timeoutMs: this.execTimeoutMs(record.size) + waitMs,
      }),
    ).catch((error: unknown) => {
      // The gate stopped it, or S3 broke off or stalled mid-stream: the helper saw too few bytes
      // and removed its temp file.
      if (isGateStop(streamFailed)) throw streamFailed;
      if (streamFailed !== undefined) {
        this.options.log.warn({ err: streamFailed }, 'S3 failed during an upload');
        throw this.s3Error(streamFailed);
      }
      throw error instanceof CoveError ? error : errors.filesFailed(error);
    });
    return { path: written.path, size: written.size, sha256: written.sha256 };
  }

  /** The ETags the page sent, by part number; the list must name every part once. */
  private expectedEtags(record: UploadRecord, request: CompleteUploadRequest): Map<number, string> {
    const etags = new Map<number, string>();
    if (!record.multipart || !request.parts) return etags;
    const parts = [...request.parts].sort((a, b) => a.partNumber - b.partNumber);
    if (parts.length !== record.parts.length || parts.some((p, i) => p.partNumber !== i + 1))
      throw errors.filesPartsInvalid(
        `expected parts 1 to ${record.parts.length}, each once, got ${parts.length}`,
      );
    for (const part of parts) etags.set(part.partNumber, normalizeEtag(part.etag));
    return etags;
  }

  /**
   * HeadObject of every part (or of those `which` picks): each must hold its exact length (and the
   * ETag the page saw).
   */
  private async checkParts(
    staging: StagingBucket,
    record: UploadRecord,
    etags: ReadonlyMap<number, string>,
    which: (partNumber: number) => boolean = () => true,
  ): Promise<void> {
    const numbers = record.parts.map((_part, i) => i + 1).filter(which);
    const heads = await mapLimit(numbers, partCallConcurrency, (n) =>
      this.s3(() =>
        staging.client.send(
          new HeadObjectCommand({ Bucket: staging.bucket, Key: (record.parts[n - 1] as StagedPart).key }),
          this.signal(),
        ),
      ).catch((error: unknown): HeadObjectCommandOutput | undefined => {
        if (error instanceof CoveError && error.code === 'COVE_ERR_FILES_NOT_STAGED') return undefined;
        throw error;
      }),
    );
    const wrong = heads.some(
      (head, i) => head?.ContentLength !== record.parts[(numbers[i] as number) - 1]?.size,
    );
    if (wrong) {
      // The total as S3 holds it, with the parts not checked here counted as announced.
      const unchecked = record.parts.filter((_part, i) => !which(i + 1)).reduce((sum, p) => sum + p.size, 0);
      const actual = heads.reduce((sum, head) => sum + (head?.ContentLength ?? 0), unchecked);
      throw errors.filesSizeMismatch(record.size, actual);
    }
    heads.forEach((head, i) => {
      const n = numbers[i] as number;
      const expected = etags.get(n);
      if (expected !== undefined && normalizeEtag(head?.ETag ?? '') !== expected)
        throw errors.filesPartsInvalid(`part ${n} is not the one that was uploaded`);
    });
  }

  /**
   * The parts' bytes in order, the next part's GET already open while one streams. Each part must
   * hold exactly its length; a body that stalls fails within `s3TimeoutMs`.
   */
  private async *partBytes(
    staging: StagingBucket,
    record: UploadRecord,
    gate: PartGate | undefined,
    failed: (error: unknown) => void,
  ): AsyncGenerator<Buffer, void, undefined> {
    const timeoutMs = this.options.config.files.s3TimeoutMs;
    const open = (i: number) => {
      const part = record.parts[i] as StagedPart;
      const object = (gate ? gate.wait(i + 1) : Promise.resolve()).then(() =>
        this.s3(() => this.getObject(staging, part.key)),
      );
      object.catch(() => undefined);
      return object;
    };
    let next = record.parts.length > 0 ? open(0) : undefined;
    try {
      for (let i = 0; i < record.parts.length; i++) {
        const part = record.parts[i] as StagedPart;
        const object = await (next as NonNullable<typeof next>);
        next = i + 1 < record.parts.length ? open(i + 1) : undefined;
        const body = object.Body as Readable | undefined;
        if (!body) throw errors.filesUnavailable(new Error('GetObject returned no body'));
        let bytes = 0;
        for await (const chunk of readWithDeadline(body, timeoutMs, `GetObject part ${i + 1}`)) {
          bytes += chunk.length;
          if (bytes > part.size) throw errors.filesSizeMismatch(record.size, record.size + 1);
          yield chunk;
        }
        if (bytes !== part.size) throw errors.filesSizeMismatch(record.size, record.size - part.size + bytes);
      }
    } catch (error) {
      failed(error);
      throw error;
    } finally {
      // A part opened ahead that nobody will read.
      void next?.then(
        (object) => (object.Body as Readable | undefined)?.destroy(),
        () => undefined,
      );
    }
  }

  /** Cancels an upload: stops its early write and deletes every part that was staged. */
  async cancelUpload(owner: EnvironmentOwner, region: string, id: string): Promise<void> {
    const { record, completing } = await this.ownRecord(owner, region, id);
    if (completing) throw errors.filesUploadBusy();
    this.records.delete(id);
    await this.options.uploads.delete(id);
    await this.stopEarlyWrite(record, 'the upload was cancelled');
    await this.closeUpload(this.options.staging.get(region), record);
  }

  /**
   * Ends an upload for good: its staged parts go, and so do later PUTs to its URLs, which still
   * verify until they expire. The embedded S3 refuses those PUTs; a configured S3 cannot revoke
   * a presigned URL, so the upload keeps counting against its owner's staging bound until its
   * URLs expire, and its keys are deleted at every sweep and once more then.
   */
  private async closeUpload(staging: StagingBucket | undefined, record: UploadRecord): Promise<void> {
    const urlsEndAt = record.createdAt + this.options.config.files.presignExpiryS * 1000 + urlGraceMs;
    if (staging?.local) {
      staging.local.refusePuts(record.keyPrefix, Math.max(0, urlsEndAt - this.now()));
      // A PUT already past the check when the upload closed: its object goes when the URLs end.
      await this.ledger.update(record.id, { kind: 'closed-upload', bytes: 0, expiresAt: urlsEndAt });
    } else {
      await this.ledger.update(record.id, { kind: 'closed-upload', expiresAt: urlsEndAt });
    }
    if (staging) await this.dropStaging(staging, record);
  }

  /** Deletes the staged objects of entries past their expiry; their bytes stop counting. */
  async expireStaged(): Promise<number> {
    const urlsMs = this.options.config.files.presignExpiryS * 1000;
    await this.forgetStale(this.now() - urlsMs - abandonedAfterMs);
    const expired = await this.ledger.takeExpired(this.now());
    for (const entry of expired) {
      const staging = this.options.staging.get(entry.region);
      if (staging) await mapLimit(entry.keys, partCallConcurrency, (key) => this.deleteObject(staging, key));
    }
    return expired.length;
  }

  /**
   * The sweep's part: expired entries, and whatever a closed upload's URLs wrote since it closed
   * (a configured S3 still takes those PUTs).
   */
  async sweepStaged(): Promise<void> {
    await this.expireStaged();
    for (const entry of await this.ledger.list('closed-upload')) {
      const staging = this.options.staging.get(entry.region);
      if (staging && !staging.local)
        await mapLimit(entry.keys, partCallConcurrency, (key) => this.deleteObject(staging, key));
    }
  }

  /** The embedded S3 served `key` whole: a download's copy is deleted at once. */
  async fetched(key: string): Promise<void> {
    const entry = await this.ledger.get(key);
    if (!entry || entry.kind !== 'download' || entry.copying) return;
    await this.ledger.remove(key);
    const staging = this.options.staging.get(entry.region);
    if (staging) await this.deleteObject(staging, key);
  }

  /** Streams a file (or a folder as .tar.gz) from the home to S3 and returns a presigned GET. */
  async download(
    owner: EnvironmentOwner,
    region: string,
    rawPath: string,
    progressId?: string,
  ): Promise<DownloadResponse & TransferDone> {
    const { files } = this.options.config;
    const path = parseHomePath(rawPath);
    if (!isHomePath(path)) throw errors.filesInvalidPath(path.problem);
    const objectKey = `${this.stagingOf(region).prefix}${owner.id}/${randomBytes(16).toString('base64url')}`;
    // Before anything else: the concurrent-download bound holds for requests sent all at once.
    await this.ledger.add([
      {
        id: objectKey,
        ownerId: owner.id,
        region,
        kind: 'download',
        bytes: 0,
        copying: true,
        keys: [objectKey],
      },
    ]);
    try {
      const done = await this.stageDownload(owner, region, path, objectKey, progressId);
      await this.ledger.update(objectKey, {
        copying: false,
        bytes: done.size,
        expiresAt: this.now() + files.downloadExpiryS * 1000,
      });
      return done;
    } catch (error) {
      await this.ledger.remove(objectKey);
      throw error;
    }
  }

  private async stageDownload(
    owner: EnvironmentOwner,
    region: string,
    path: HomePath,
    objectKey: string,
    progressId: string | undefined,
  ): Promise<DownloadResponse & TransferDone> {
    const { files } = this.options.config;
    const staging = await this.usableStaging(region);
    await this.checkDisk(staging, 0);
    await this.ensure(owner, region);
    const key = { ownerId: owner.id, region };
    const info = await this.helperCall(path.display, () => this.options.helper.stat(key, path.display));
    if (info.type === 'other') throw errors.filesNotAFile(info.path);
    if (info.type === 'file' && info.size > files.maxFileBytes)
      throw errors.filesTooLarge(files.maxFileBytes, formatDecimalBytes(files.maxFileBytes, 10));
    const kind = info.type === 'file' ? 'read' : 'tar';
    const name = kind === 'read' ? info.name : `${info.name}.tar.gz`;
    // A file counts its full length (a sparse one too: that is what S3 stores); an archive as it
    // is written.
    if (kind === 'read') {
      await this.ledger.grow(objectKey, info.size);
      await this.checkDisk(staging, info.size);
    }

    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    const objectParams = {
      Bucket: staging.bucket,
      Key: objectKey,
      Body: body,
      ContentType: 'application/octet-stream',
    };
    // A file's length is known, so it goes up as one streamed PUT: a multipart upload costs S3 an
    // assembly step (s3rver copies every byte again) and buys nothing on a stream from one exec.
    // A folder's archive has no length beforehand and goes in parts.
    const exactSize = kind === 'read' && info.size <= maxSinglePutBytes ? info.size : undefined;
    const transferTimeoutMs = this.execTimeoutMs(kind === 'read' ? info.size : files.maxFileBytes);
    const upload =
      exactSize !== undefined
        ? new SinglePut(staging.client, { ...objectParams, ContentLength: exactSize }, transferTimeoutMs)
        : new Upload({
            client: staging.client,
            params: objectParams,
            partSize: files.partSizeBytes,
            queueSize: 4,
            leavePartsOnError: false,
          });
    // If S3 fails or stops reading mid-way, the sink fails: the transfer socket closes and the
    // helper ends at once instead of waiting for the exec's deadline.
    const stallMs = files.s3TimeoutMs;
    let s3Failed: unknown;
    /** The archive passed the user's staging bound or the disk's reserve. */
    let refused: unknown;
    let sinceDiskCheck = 0;
    const countArchive = async (bytes: number): Promise<void> => {
      if (kind !== 'tar') return;
      await this.ledger.grow(objectKey, bytes);
      sinceDiskCheck += bytes;
      if (sinceDiskCheck < diskCheckEveryBytes) return;
      sinceDiskCheck = 0;
      await this.checkDisk(staging, 0);
    };
    const progress =
      progressId === undefined
        ? undefined
        : this.progress.start(owner.id, region, progressId, kind === 'read' ? info.size : undefined);
    const sendChunk = (chunk: Buffer, callback: (error?: Error | null) => void): void => {
      writeWithDeadline(body, chunk, stallMs, 'PutObject body').then(
        () => {
          progress?.add(chunk.length);
          callback();
        },
        (error: unknown) => {
          s3Failed ??= error;
          callback(error as Error);
        },
      );
    };
    const sink = new Writable({
      highWaterMark: 1024 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        if (s3Failed !== undefined) return callback(new Error('S3 failed'));
        if (refused !== undefined) return callback(new Error('staging refused'));
        countArchive(chunk.length).then(
          () => sendChunk(chunk, callback),
          (error: unknown) => {
            refused ??= error;
            callback(error as Error);
          },
        );
      },
    });
    const uploading = upload.done().catch((error: unknown) => {
      s3Failed ??= error;
      body.destroy();
      throw error;
    });
    // S3 may fail while the helper still streams, long before anything awaits this.
    uploading.catch(() => undefined);
    let streamed;
    try {
      streamed = await this.helperCall(info.path, () =>
        this.options.helper.streamOut(key, kind, info.path, sink, {
          maxBytes: files.maxFileBytes,
          ...(exactSize !== undefined && { exactBytes: exactSize }),
          timeoutMs: transferTimeoutMs,
        }),
      );
      body.end();
      // S3 has every byte now; it must answer soon (a multipart upload still sends its last parts).
      const answerMs = exactSize !== undefined ? stallMs : this.execTimeoutMs(streamed.size);
      await withDeadline(uploading, answerMs, () => {
        s3Failed ??= new S3StallError('PutObject answer', answerMs);
      });
    } catch (error) {
      // Taken before the abort below, which fails the S3 side too.
      const refusal = refused;
      body.destroy();
      await upload.abort().catch(() => undefined);
      await uploading.catch(() => undefined);
      // A dead S3 would hold the answer for another timeout: the sweep deletes it then.
      if (s3Failed === undefined || refusal !== undefined) await this.deleteObject(staging, objectKey);
      else void this.deleteObject(staging, objectKey);
      if (refusal !== undefined) throw refusal;
      if (s3Failed !== undefined) {
        this.options.log.warn({ err: s3Failed }, 'S3 failed during a download');
        throw this.s3Error(s3Failed);
      }
      throw error instanceof HelperError && error.code === 'too-large'
        ? errors.filesTooLarge(files.maxFileBytes, formatDecimalBytes(files.maxFileBytes, 10))
        : error;
    } finally {
      progress?.end();
    }
    const url = await getSignedUrl(
      staging.client,
      new GetObjectCommand({
        Bucket: staging.bucket,
        Key: objectKey,
        ResponseContentDisposition: contentDisposition(name),
        ResponseContentType: kind === 'read' ? 'application/octet-stream' : 'application/gzip',
      }),
      // The copy is deleted when this ends (expireStaged), or once fetched from the embedded S3.
      { expiresIn: files.downloadExpiryS },
    );
    return {
      url,
      name,
      size: streamed.size,
      direction: 'download',
      path: info.path,
      sha256: streamed.sha256,
    };
  }

  async list(
    owner: EnvironmentOwner,
    region: string,
    rawDir: string,
    maxEntries = 1000,
  ): Promise<FileListing> {
    const dir = parseHomePath(rawDir);
    if (!isHomePath(dir)) throw errors.filesInvalidPath(dir.problem);
    await this.ensure(owner, region);
    const key = { ownerId: owner.id, region };
    return this.helperCall(dir.display, () => this.options.helper.list(key, dir.display, maxEntries));
  }

  /** Drops upload records older than `olderThanMs` (their staging objects go with the bucket sweep). */
  async forgetStale(olderThanMs: number): Promise<number> {
    let dropped = 0;
    for (const record of [...this.records.values()]) {
      if (record.createdAt >= olderThanMs || record.completing) continue;
      this.records.delete(record.id);
      await this.options.uploads.delete(record.id).catch(() => false);
      await this.stopEarlyWrite(record, 'the upload was abandoned');
      await this.closeUpload(this.options.staging.get(record.region), record);
      dropped++;
    }
    return dropped;
  }

  /** Deletes every instance's abandoned and long-finished upload records (a periodic job runs it). */
  pruneRecords(): Promise<number> {
    const now = this.now();
    const abandoned = now - this.options.config.files.presignExpiryS * 1000 - abandonedAfterMs;
    return this.options.uploads.prune(abandoned, now - finishedKeepMs);
  }

  pendingUploads(): number {
    return this.records.size;
  }

  close(): void {
    clearInterval(this.expiryTimer);
    // Early writes end at once; their helpers remove their temp files.
    for (const record of this.records.values())
      record.early?.gate.close(new PartGateClosed('Cove is stopping'));
  }

  /**
   * The upload as the store has it, with this instance's own state (reported parts, an early
   * write) when it has any; an upload started on another instance gets that state fresh here.
   * `completing`: some instance is completing it now.
   */
  private async ownRecord(
    owner: EnvironmentOwner,
    region: string,
    id: string,
  ): Promise<{ record: UploadRecord; completing: boolean }> {
    const row = await this.options.uploads.get(id);
    const local = this.records.get(id);
    // (Not while this instance completes it: that path cleans up after itself.)
    if (local && !local.completing && (!row || row.finishedAt !== null)) {
      // Completed or cancelled on another instance: this one's share of it ends too.
      this.records.delete(id);
      await this.stopEarlyWrite(local, 'the upload ended on another instance');
      await this.closeUpload(this.options.staging.get(local.region), local);
    }
    // Another user's id answers exactly like an unknown one.
    if (!row || row.finishedAt !== null || row.ownerId !== owner.id || row.region !== region)
      throw errors.filesUploadNotFound();
    const dir = parseHomePath(row.dir);
    if (!isHomePath(dir)) throw errors.filesUploadNotFound();
    let record = this.records.get(id);
    if (!record) {
      record = {
        id,
        ownerId: row.ownerId,
        region: row.region,
        dir,
        name: row.name,
        size: row.size,
        replace: row.replace,
        createdAt: row.createdAt,
        keyPrefix: row.keyPrefix,
        parts: row.parts,
        multipart: row.multipart,
        completing: false,
        stored: new Map(),
        earlyTried: false,
      };
      this.records.set(id, record);
    }
    return { record, completing: record.completing || row.completing };
  }

  /** The region's bucket, when transfer is on there and S3 answers. */
  private async usableStaging(region: string): Promise<StagingBucket> {
    const staging = this.stagingOf(region);
    // Every time: presigning a single PUT needs no S3 call, so this is what notices S3 is down.
    await this.s3(() =>
      staging.client.send(new HeadBucketCommand({ Bucket: staging.bucket }), this.signal()),
    );
    return staging;
  }

  /** The region's bucket, when transfer is on there (no S3 call: the caller's own call notices S3 down). */
  private stagingOf(region: string): StagingBucket {
    const staging = this.options.staging.get(region);
    if (!staging) throw errors.filesMisconfigured(new Error(`no staging bucket for region ${region}`));
    const problems = this.disabled.get(region);
    if (problems) throw errors.filesMisconfigured(new Error(problems.join('; ')));
    return staging;
  }

  /**
   * GetObject with a deadline for the answer only: an abort signal would also cut the body
   * stream, which may take minutes for a large file.
   */
  private async getObject(staging: StagingBucket, key: string) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.config.files.s3TimeoutMs);
    try {
      return await staging.client.send(new GetObjectCommand({ Bucket: staging.bucket, Key: key }), {
        abortSignal: controller.signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  private async ensure(owner: EnvironmentOwner, region: string): Promise<void> {
    try {
      await this.options.ensure(owner, region);
    } catch (error) {
      throw error instanceof CoveError ? error : errors.filesEnvironmentUnavailable(error);
    }
  }

  /** Refuses (507) when staging `bytes` on the embedded S3 would eat into the disk's reserve. */
  private async checkDisk(staging: StagingBucket, bytes: number): Promise<void> {
    if (!staging.local) return;
    let free: number;
    try {
      free = await staging.local.freeBytes();
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not read the staging disk; not checking its reserve');
      return;
    }
    if (free - bytes < this.options.config.files.stagingReserveBytes) {
      this.options.log.warn(
        { freeBytes: free, neededBytes: bytes },
        'staging refused: disk down to its reserve',
      );
      throw errors.filesHostFull();
    }
  }

  private signal(timeoutMs = this.options.config.files.s3TimeoutMs): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout(timeoutMs) };
  }

  private execTimeoutMs(bytes: number): number {
    return 60_000 + Math.ceil((bytes / minBytesPerS) * 1000);
  }

  /** Runs an S3 call; S3's own failures become 503s that say the terminal is fine. */
  private async s3<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.s3Error(error);
    }
  }

  private s3Error(error: unknown): CoveError {
    if (error instanceof CoveError) return error;
    const sdk = error as SdkError;
    const status = sdk.$metadata?.httpStatusCode;
    if (status === 404 || sdk.name === 'NotFound' || sdk.name === 'NoSuchKey')
      return new CoveError('COVE_ERR_FILES_NOT_STAGED', 404, 'The upload did not arrive.', { cause: error });
    if (status === 403 || status === 401) return errors.filesMisconfigured(error);
    // A stall, a reset, a refused connection, a 5xx: S3 is not usable right now.
    return errors.filesUnavailable(error);
  }

  private async helperCall<T>(shown: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof HelperError) {
        if (error.code === 'failed') this.options.log.warn({ helper: error.message }, 'cove-files failed');
        throw helperErrorToCove(error, shown);
      }
      // The driver's errors (engine gone, container stopped, exec timed out) are not the user's.
      const engineDown = (error as NodeJS.ErrnoException).syscall === 'connect';
      if ((error as Error).name === 'SandboxError' || engineDown)
        throw errors.filesEnvironmentUnavailable(error);
      if (!(error instanceof CoveError)) this.options.log.warn({ err: error }, 'file transfer failed');
      throw error;
    }
  }

  /** Deletes every staged part (a missing one is fine). */
  private async dropStaging(staging: StagingBucket, record: UploadRecord): Promise<void> {
    await mapLimit(record.parts, partCallConcurrency, (part) => this.deleteObject(staging, part.key));
  }

  private async deleteObject(staging: StagingBucket, key: string): Promise<void> {
    try {
      await staging.client.send(new DeleteObjectCommand({ Bucket: staging.bucket, Key: key }), this.signal());
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not delete a staging object; the sweep will');
    }
  }
}

/** S3's limit for one PutObject. */
const maxSinglePutBytes = 5 * 1024 ** 3;

/** One streamed PutObject, with the two calls of lib-storage's Upload that download() uses. */
class SinglePut {
  private readonly controller = new AbortController();

  constructor(
    private readonly client: S3Client,
    private readonly params: ConstructorParameters<typeof PutObjectCommand>[0],
    /** The whole PUT's deadline: the client's requestTimeout is sized for short calls. */
    private readonly timeoutMs: number,
  ) {}

  async done(): Promise<unknown> {
    return this.client.send(new PutObjectCommand(this.params), {
      abortSignal: this.controller.signal,
      requestTimeout: this.timeoutMs,
    });
  }

  async abort(): Promise<void> {
    this.controller.abort();
  }
}

/** `work` for each item, at most `limit` at a time; results in order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** `work`, or `onTimeout` and a rejection after `timeoutMs`. */
async function withDeadline<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Browsers read the ETag header with its quotes; S3 wants them. */
function normalizeEtag(etag: string): string {
  const bare = etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
  return `"${bare}"`;
}
