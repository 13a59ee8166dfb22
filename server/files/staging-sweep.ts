/**
 * Removes what transfers leave behind in the staging buckets: objects older than
 * `files.stagingRetentionS` (a download nobody fetched, an upload whose page went away, anything
 * a crash interrupted), stale multipart uploads, and the server's own stale upload records. Runs
 * at start and every `files.sweepIntervalS`; a bucket lifecycle rule may do the same on real S3.
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import type { FastifyBaseLogger } from 'fastify';
import type { StagingBucket } from './s3-file-transfer.js';

export interface StagingSweepOptions {
  readonly buckets: readonly StagingBucket[];
  readonly retentionS: number;
  readonly log: FastifyBaseLogger;
  readonly now: () => number;
  /** Extra work per run: the embedded S3's multipart directories, stale records, re-checks. */
  readonly alsoRun?: (olderThanMs: number) => Promise<void>;
}

export interface SweepResult {
  readonly objectsDeleted: number;
  readonly uploadsAborted: number;
}

interface SdkError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

export class StagingSweep {
  private running: Promise<SweepResult> | undefined;

  constructor(private readonly options: StagingSweepOptions) {}

  /**
   * One pass; concurrent calls share it. `asOf` sweeps as if it were that moment (what has aged
   * past the retention by then goes), without moving the clock every other timer of the server
   * reads: sessions and idle terminals must not see that time jump. It waits for a pass in flight.
   */
  async run(asOf?: number): Promise<SweepResult> {
    if (asOf !== undefined) {
      await this.running?.catch(() => undefined);
      return this.runOnce(asOf);
    }
    this.running ??= this.runOnce(this.options.now()).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runOnce(at: number): Promise<SweepResult> {
    const olderThanMs = at - this.options.retentionS * 1000;
    let objectsDeleted = 0;
    let uploadsAborted = 0;
    for (const staging of this.options.buckets) {
      try {
        objectsDeleted += await this.deleteOldObjects(staging, olderThanMs);
        uploadsAborted += await this.abortOldUploads(staging, olderThanMs);
      } catch (error) {
        this.options.log.warn({ err: error, bucket: staging.bucket }, 'staging sweep failed; will retry');
      }
    }
    await this.options.alsoRun?.(olderThanMs).catch((error: unknown) => {
      this.options.log.warn({ err: error }, 'staging sweep extra step failed');
    });
    if (objectsDeleted + uploadsAborted > 0)
      this.options.log.info({ objectsDeleted, uploadsAborted }, 'staging sweep removed leftovers');
    return { objectsDeleted, uploadsAborted };
  }

  private async deleteOldObjects(staging: StagingBucket, olderThanMs: number): Promise<number> {
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await staging.client.send(
        new ListObjectsV2Command({
          Bucket: staging.bucket,
          Prefix: staging.prefix,
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key || (object.LastModified?.getTime() ?? 0) >= olderThanMs) continue;
        await staging.client.send(new DeleteObjectCommand({ Bucket: staging.bucket, Key: object.Key }));
        deleted++;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return deleted;
  }

  private async abortOldUploads(staging: StagingBucket, olderThanMs: number): Promise<number> {
    let aborted = 0;
    try {
      const page = await staging.client.send(
        new ListMultipartUploadsCommand({ Bucket: staging.bucket, Prefix: staging.prefix }),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || (upload.Initiated?.getTime() ?? 0) >= olderThanMs) continue;
        await staging.client.send(
          new AbortMultipartUploadCommand({
            Bucket: staging.bucket,
            Key: upload.Key,
            UploadId: upload.UploadId,
          }),
        );
        aborted++;
      }
    } catch (error) {
      // s3rver has no ListMultipartUploads; its uploads are swept from its directory instead.
      if (
        (error as SdkError).name !== 'NotImplemented' &&
        (error as SdkError).$metadata?.httpStatusCode !== 501
      )
        throw error;
    }
    return aborted;
  }
}
