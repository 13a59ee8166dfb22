/**
 * The embedded S3 (s3rver on loopback) that serves file transfer when no region configures S3, so
 * upload and download work out of the box on one machine. Objects live under `<dataDir>/s3`.
 * s3rver does not check signatures and has no AbortMultipartUpload or ListMultipartUploads, so
 * this class also removes abandoned multipart uploads from its directory itself.
 */
import { createRequire } from 'node:module';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

export const embeddedCredentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const embeddedBucket = 'cove-staging';
/** s3rver's bucket region is irrelevant, but the SDK signs with one. */
export const embeddedRegion = 'us-east-1';

interface S3rverOptions {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  /** Path-style only: `<bucket>.localhost` names are of no use on loopback. */
  vhostBuckets: boolean;
  configureBuckets: { name: string; configs: string[] }[];
}

/**
 * s3rver runs in a worker thread: in the server's event loop, serving a 200 MB GetObject (and
 * hashing every byte it stores) took turns with piping the same bytes into the container. The
 * worker is plain JavaScript (an `eval` worker, CommonJS like s3rver), so it runs the same from
 * dist/ and from the sources.
 */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const S3rver = require(workerData.s3rverPath);
const server = new S3rver(workerData.options);
server.run().then(
  (address) => parentPort.postMessage({ port: address.port }),
  (error) => parentPort.postMessage({ error: String(error && error.message || error) }),
);
parentPort.on('message', async (message) => {
  if (message !== 'stop') return;
  const closing = server.close();
  if (server.httpServer) server.httpServer.closeAllConnections();
  await closing.catch(() => undefined);
  parentPort.postMessage({ stopped: true });
});
`;

type WorkerMessage = { port: number } | { error: string } | { stopped: true };

const s3rverPath = createRequire(import.meta.url).resolve('s3rver');

/**
 * The CORS rule browsers need for presigned PUTs and GETs: ETag exposed, because a multipart
 * upload's page reads every part's ETag to complete it.
 */
export function corsRuleXml(origins: readonly string[]): string {
  const allowed = origins.map((o) => `<AllowedOrigin>${escapeXml(o)}</AllowedOrigin>`).join('');
  return (
    '<CORSConfiguration><CORSRule>' +
    allowed +
    '<AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>' +
    '<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds>' +
    '</CORSRule></CORSConfiguration>'
  );
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface EmbeddedS3Options {
  readonly directory: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly buckets: readonly string[];
  /** Origins allowed by the buckets' CORS rule (Cove's public origin). */
  readonly corsOrigins: readonly string[];
}

export class EmbeddedS3 {
  private constructor(
    private readonly worker: Worker,
    readonly endpoint: string,
    readonly directory: string,
  ) {}

  static async start(options: EmbeddedS3Options): Promise<EmbeddedS3> {
    const s3rverOptions: S3rverOptions = {
      address: '127.0.0.1',
      port: options.port,
      directory: options.directory,
      silent: true,
      vhostBuckets: false,
      configureBuckets: options.buckets.map((name) => ({
        name,
        configs: [corsRuleXml(options.corsOrigins)],
      })),
    };
    const worker = new Worker(workerSource, {
      eval: true,
      workerData: { s3rverPath, options: s3rverOptions },
    });
    const port = await new Promise<number>((resolve, reject) => {
      const exited = (code: number): void => reject(new Error(`the embedded S3 exited (${code})`));
      worker.once('error', reject);
      worker.once('exit', exited);
      worker.once('message', (message: WorkerMessage) => {
        worker.off('error', reject);
        worker.off('exit', exited);
        if ('port' in message) resolve(message.port);
        else reject(new Error('error' in message ? message.error : 'the embedded S3 did not start'));
      });
    }).catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    // Past the start its failures show as S3 calls that fail (503s); an error must not crash Cove.
    worker.on('error', () => undefined);
    return new EmbeddedS3(worker, `http://127.0.0.1:${port}`, options.directory);
  }

  get port(): number {
    return Number(new URL(this.endpoint).port);
  }

  /** Stops listening; open transfers are cut (their staging objects are swept later). */
  async stop(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      const done = (): void => resolve();
      this.worker.once('exit', done);
      this.worker.on('message', (message: WorkerMessage) => {
        if ('stopped' in message) done();
      });
    });
    this.worker.postMessage('stop');
    await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    await this.worker.terminate();
  }

  /** What AbortMultipartUpload would do (s3rver answers 405 to it). */
  async removeMultipartUpload(bucket: string, uploadId: string): Promise<void> {
    if (!/^[0-9a-f]{32}$/.test(uploadId)) return;
    await rm(join(this.uploadsDir(bucket), uploadId), { recursive: true, force: true });
  }

  /** Removes multipart uploads started before `olderThanMs` (epoch ms); returns how many. */
  async sweepMultipartUploads(bucket: string, olderThanMs: number): Promise<number> {
    let removed = 0;
    let names: string[];
    try {
      names = await readdir(this.uploadsDir(bucket));
    } catch {
      return 0;
    }
    for (const name of names) {
      const dir = join(this.uploadsDir(bucket), name);
      const info = await stat(dir).catch(() => undefined);
      if (info && info.mtimeMs < olderThanMs) {
        await rm(dir, { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }

  private uploadsDir(bucket: string): string {
    return join(this.directory, bucket, '._S3rver_uploads');
  }
}
