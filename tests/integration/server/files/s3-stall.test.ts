/**
 * F05 during a transfer: S3 stops moving bytes half way through (a hung peer: the connection stays
 * open and silent), while Cove streams staged parts into the container and while it puts a
 * download into S3. Cove gives up after `files.s3TimeoutMs` without bytes (2 s here) with 503
 * "file transfer unavailable", the helper leaves no partial or temp file, and the same transfer
 * works once S3 is back: `complete` is simply called again, as the staged parts were kept.
 * A proxy between Cove and a real s3rver makes the stall after a given number of bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HomeTestServer, MiB, regionA, regionB, type HomeTestUser } from '../homes/home-test-server.js';
import { TestS3 } from '../../../helpers/s3.js';
import type {
  CompleteUploadResponse,
  DownloadResponse,
  MultipartUpload,
  UploadResponse,
} from '../../../../server/protocol/files.js';
import type {} from '../../../../server/files/file-service.js';

const s3TimeoutMs = 2000;

/**
 * Forwards loopback TCP to s3rver until `stallAfter` bytes went one way; then every connection
 * stops (nothing read, nothing written, nothing closed), and new ones are held silent, until
 * `restore()` drops them all.
 */
class StallingProxy {
  private budget: { direction: 'up' | 'down'; bytes: number } | undefined;
  private stalled = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly targetPort: number,
  ) {
    server.on('connection', (client) => this.link(client));
  }

  static async start(targetPort: number): Promise<StallingProxy> {
    const server = createServer();
    const proxy = new StallingProxy(server, targetPort);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Stalls every connection once `bytes` more bytes went `up` (to S3) or `down` (from S3). */
  stallAfter(direction: 'up' | 'down', bytes: number): void {
    this.budget = { direction, bytes };
  }

  restore(): void {
    this.budget = undefined;
    this.stalled = false;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.restore();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private link(client: Socket): void {
    this.track(client);
    if (this.stalled) {
      client.pause();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
    this.track(upstream);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    this.pump(client, upstream, 'up');
    this.pump(upstream, client, 'down');
  }

  private pump(from: Socket, to: Socket, direction: 'up' | 'down'): void {
    from.on('data', (chunk: Buffer) => {
      if (this.stalled) return;
      if (this.budget?.direction === direction) {
        this.budget.bytes -= chunk.length;
        if (this.budget.bytes <= 0) {
          this.stalled = true;
          for (const socket of this.sockets) socket.pause();
          return;
        }
      }
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => {
          if (!this.stalled) from.resume();
        });
      }
    });
  }
}

let server: HomeTestServer;
let s3: TestS3;
let proxy: StallingProxy;
let alice: HomeTestUser;

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const uploads = `/api/environments/${regionA}/uploads`;

async function inContainer(script: string): Promise<string> {
  const result = await server.app.environments
    .driver(regionA)
    .exec({ ownerId: alice.id, region: regionA }, ['/bin/sh', '-c', script], { timeoutMs: 60_000 });
  return result.stdout.toString('utf8');
}

beforeAll(async () => {
  s3 = await TestS3.start();
  proxy = await StallingProxy.start(s3.port);
  Object.assign(process.env, TestS3.credentialsEnv());
  server = await HomeTestServer.start({
    homeSizeBytes: 256 * MiB,
    config: {
      regions: [
        { id: regionA, name: 'US East', s3: { ...s3.regionConfig(), endpoint: proxy.url } },
        // Unused here; the test server tidies up both of its regions.
        { id: regionB, name: 'Europe' },
      ],
      files: { partSizeBytes: 8 * MiB, multipartThresholdBytes: 8 * MiB, s3TimeoutMs },
    },
  });
  await server.app.files.checked;
  alice = await server.user('alice');
}, 120_000);

afterAll(async () => {
  await server?.destroy();
  await proxy?.close();
  await s3?.destroy();
}, 120_000);

describe('F05 S3 stalls mid-transfer', () => {
  it('F05 upload: S3 hangs while the parts stream into $HOME: 503 within the timeout, no partial file, complete works after recovery', async () => {
    const data = randomBytes(24 * MiB);
    const requested = await server.request(alice, 'POST', uploads, {
      dir: '~',
      files: [{ name: 'stalled.bin', size: data.length }],
    });
    expect(requested.statusCode, requested.body).toBe(200);
    const ticket = requested.json<UploadResponse>().uploads[0] as MultipartUpload;
    const parts = await Promise.all(
      ticket.parts.map(async (part) => {
        const start = (part.partNumber - 1) * ticket.partSize;
        const body = new Blob([data.subarray(start, start + ticket.partSize)]);
        const response = await fetch(part.url, { method: 'PUT', body });
        expect(response.status).toBe(200);
        return { partNumber: part.partNumber, etag: response.headers.get('etag') ?? '' };
      }),
    );

    // Half way through the second part, S3 goes silent.
    proxy.stallAfter('down', 12 * MiB);
    const stalled = await server.request(alice, 'POST', `${uploads}/${ticket.id}/complete`, { parts });
    expect(stalled.statusCode, stalled.body).toBe(503);
    expect(stalled.json<{ code: string; message: string }>()).toEqual({
      code: 'COVE_ERR_FILES_UNAVAILABLE',
      message:
        'File transfer is unavailable right now; your terminal is not affected. Try again in a minute.',
    });
    expect(await inContainer('ls -A ~')).not.toMatch(/stalled|\.cove-upload-/);

    proxy.restore();
    const retried = await server.request(alice, 'POST', `${uploads}/${ticket.id}/complete`, { parts });
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json<CompleteUploadResponse>()).toEqual({
      path: '~/stalled.bin',
      size: data.length,
      sha256: sha256(data),
    });
    expect(await s3.keys()).toEqual([]);
  }, 120_000);

  it('F05 download: S3 stops taking the bytes: 503 within the timeout, then the same download works', async () => {
    await inContainer('head -c 24M /dev/urandom > ~/out.bin');
    const digest = (await inContainer('sha256sum ~/out.bin')).split(' ')[0];

    proxy.stallAfter('up', 8 * MiB);
    const stalled = await server.request(alice, 'POST', `/api/environments/${regionA}/downloads`, {
      path: '~/out.bin',
    });
    expect(stalled.statusCode, stalled.body).toBe(503);
    expect(stalled.json<{ code: string }>().code).toBe('COVE_ERR_FILES_UNAVAILABLE');
    // The helper was ended with the transfer: no socket left in the environment's /run/cove.
    expect(await inContainer('ls -A /run/cove')).not.toContain('xfer-');

    proxy.restore();
    const again = await server.request(alice, 'POST', `/api/environments/${regionA}/downloads`, {
      path: '~/out.bin',
    });
    expect(again.statusCode, again.body).toBe(200);
    const file = again.json<DownloadResponse>();
    const got = await fetch(file.url);
    expect(got.status).toBe(200);
    expect(sha256(new Uint8Array(await got.arrayBuffer()))).toBe(digest);
  }, 120_000);
});
