/**
 * A real S3 (s3rver) on 127.0.0.1 with a random port and a temp directory, plus an SDK client set
 * up the only way that works against it (path style, WHEN_REQUIRED checksums). `stop()` then
 * `start()` again keeps the port and the data, for "S3 down" tests. Always `destroy()` in afterAll.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { EmbeddedS3, embeddedCredentials, embeddedRegion } from '../../server/files/embedded-s3.js';
import { createS3Client } from '../../server/files/s3-file-transfer.js';

export const testBucket = 'cove-test-staging';

export class TestS3 {
  private server: EmbeddedS3 | undefined;
  readonly client: S3Client;

  private constructor(
    readonly directory: string,
    readonly port: number,
    readonly corsOrigins: readonly string[],
    server: EmbeddedS3,
  ) {
    this.server = server;
    this.client = createS3Client({
      region: embeddedRegion,
      endpoint: this.endpoint,
      forcePathStyle: true,
      credentials: embeddedCredentials,
      timeoutMs: 5000,
    });
  }

  /** Starts s3rver with `testBucket` (CORS for `corsOrigins`, ETag exposed). */
  static async start(corsOrigins: readonly string[] = ['http://127.0.0.1:8080']): Promise<TestS3> {
    const directory = mkdtempSync(join(tmpdir(), 'cove-s3-'));
    const server = await EmbeddedS3.start({ directory, port: 0, buckets: [testBucket], corsOrigins });
    return new TestS3(directory, server.port, corsOrigins, server);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What a region's `s3` config needs to use this server. */
  regionConfig(prefix = 'cove-staging/'): Record<string, unknown> {
    return {
      bucket: testBucket,
      prefix,
      endpoint: this.endpoint,
      forcePathStyle: true,
      region: embeddedRegion,
    };
  }

  /** For code that reads credentials from the SDK's default chain (configured buckets). */
  static credentialsEnv(): Record<string, string> {
    return {
      AWS_ACCESS_KEY_ID: embeddedCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: embeddedCredentials.secretAccessKey,
    };
  }

  async keys(prefix = ''): Promise<string[]> {
    const page = await this.client.send(new ListObjectsV2Command({ Bucket: testBucket, Prefix: prefix }));
    return (page.Contents ?? []).map((o) => o.Key ?? '');
  }

  /** S3 goes away (connections refused) until `start()`. */
  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }

  async restart(): Promise<void> {
    if (this.server) return;
    this.server = await EmbeddedS3.start({
      directory: this.directory,
      port: this.port,
      buckets: [testBucket],
      corsOrigins: this.corsOrigins,
    });
  }

  async destroy(): Promise<void> {
    this.client.destroy();
    await this.stop().catch(() => undefined);
    rmSync(this.directory, { recursive: true, force: true });
  }
}
