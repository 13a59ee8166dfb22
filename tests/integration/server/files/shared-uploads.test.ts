/**
 * Two instances' file transfers on one store and one configured S3 (s3rver on loopback), as a
 * round-robin proxy would spread a page's requests: an upload started on one instance is
 * reported, completed, asked again or cancelled on the other. No Docker: a stand-in for the
 * in-container helper that hashes what it is given.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../../../server/config.js';
import { CoveError } from '../../../../server/errors.js';
import type { CoveFilesHelper } from '../../../../server/files/cove-files-helper.js';
import { S3FileTransfer, type StagingBucket } from '../../../../server/files/s3-file-transfer.js';
import type { MultipartUpload, SingleUpload } from '../../../../server/protocol/files.js';
import { PostgresStore } from '../../../../server/store/postgres-store.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import type { Store } from '../../../../server/store/store.js';
import { startPostgres, type TestPostgres } from '../../../helpers/postgres.js';
import { TestS3, testBucket } from '../../../helpers/s3.js';

const region = 'us-east-1';
const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

interface Written {
  readonly instance: string;
  readonly name: string;
  readonly sha256: string;
}

let s3: TestS3;
let dataDir: string;
let written: Written[];
let transfers: S3FileTransfer[] = [];
let stores: Store[] = [];

/** What the helper inside the container would do with the bytes, minus the container. */
function fakeHelper(instance: string): CoveFilesHelper {
  return {
    checkDir: (_key: unknown, dir: string) => Promise.resolve({ dir, freeBytes: 1024 * MiB }),
    async write(_key: unknown, dir: string, name: string, size: number, input: NodeJS.ReadableStream) {
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of input as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.length;
      }
      if (bytes !== size) throw new Error(`expected ${size} bytes, got ${bytes}`);
      const digest = hash.digest('hex');
      written.push({ instance, name, sha256: digest });
      return { path: `${dir}/${name}`, name, size, sha256: digest };
    },
  } as unknown as CoveFilesHelper;
}

async function startInstances(openStore: () => Promise<Store>): Promise<[S3FileTransfer, S3FileTransfer]> {
  const config = buildConfig(
    {
      logLevel: 'silent',
      dataDir,
      regions: [{ id: region, name: 'US East' }],
      files: { multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB },
    },
    {},
  );
  const staging: StagingBucket = { client: s3.client, bucket: testBucket, prefix: 'staging/' };
  const made: S3FileTransfer[] = [];
  for (const instance of ['a', 'b']) {
    const store = await openStore();
    stores.push(store);
    made.push(
      new S3FileTransfer({
        config,
        staging: new Map([[region, staging]]),
        helper: fakeHelper(instance),
        ensure: () => Promise.resolve(),
        log: pino({ level: 'silent' }),
        uploads: store.uploads,
      }),
    );
  }
  transfers = made;
  const owner = await stores[0]?.users.create({ username: 'pat' });
  ownerId = owner?.id ?? '';
  return [made[0] as S3FileTransfer, made[1] as S3FileTransfer];
}

let ownerId = '';
const owner = () => ({ id: ownerId, username: 'pat' }) as Parameters<S3FileTransfer['createUploads']>[0];

async function put(url: string, body: Uint8Array): Promise<string> {
  const response = await fetch(url, { method: 'PUT', body: new Blob([body as Uint8Array<ArrayBuffer>]) });
  expect(response.status).toBe(200);
  return response.headers.get('etag') ?? '';
}

const rejection = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );

function sharedUploadCases(openStore: () => Promise<Store>): void {
  it('completes on one instance a single-PUT upload started on the other; asking again gets the answer', async () => {
    const [a, b] = await startInstances(openStore);
    const data = randomBytes(100_000);
    const { uploads } = await a.createUploads(owner(), region, {
      dir: '~',
      files: [{ name: 'notes.txt', size: data.length }],
    });
    const ticket = uploads[0] as SingleUpload;
    await put(ticket.url, data);
    const done = await b.completeUpload(owner(), region, ticket.id, {});
    expect(done).toEqual({
      saved: { path: '~/notes.txt', size: data.length, sha256: sha256(data) },
      repeated: false,
    });
    expect(written).toEqual([{ instance: 'b', name: 'notes.txt', sha256: sha256(data) }]);
    // The page lost the answer and asks the other instance: same answer, nothing written again.
    expect(await a.completeUpload(owner(), region, ticket.id, {})).toEqual({
      saved: done.saved,
      repeated: true,
    });
    expect(written).toHaveLength(1);
  });

  it('takes part reports on either instance and completes a multipart upload exactly once', async () => {
    const [a, b] = await startInstances(openStore);
    const data = randomBytes(11 * MiB);
    const { uploads } = await b.createUploads(owner(), region, {
      dir: '~',
      files: [{ name: 'big.bin', size: data.length }],
    });
    const ticket = uploads[0] as MultipartUpload;
    expect(ticket.parts).toHaveLength(3);
    const parts = [];
    for (const part of ticket.parts) {
      const bytes = data.subarray((part.partNumber - 1) * 5 * MiB, part.partNumber * 5 * MiB);
      const etag = await put(part.url, bytes);
      parts.push({ partNumber: part.partNumber, etag });
      // Round robin: part 1 to a (which starts writing early), part 2 to b, part 3 to a.
      await (part.partNumber % 2 === 1 ? a : b).reportPart(owner(), region, ticket.id, part.partNumber, etag);
    }
    // Both instances at once: one completes, the other is told it is busy or gets the answer.
    const outcomes = await Promise.allSettled([
      a.completeUpload(owner(), region, ticket.id, { parts }),
      b.completeUpload(owner(), region, ticket.id, { parts }),
    ]);
    const saved = outcomes.flatMap((o) =>
      o.status === 'fulfilled' && !o.value.repeated ? [o.value.saved] : [],
    );
    expect(saved).toEqual([{ path: '~/big.bin', size: data.length, sha256: sha256(data) }]);
    for (const o of outcomes)
      if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'COVE_ERR_FILES_UPLOAD_BUSY' });
    expect(written.map((w) => w.sha256)).toEqual([sha256(data)]);
  });

  it('counts the home space that uploads signed on the other instance already claim', async () => {
    const [a, b] = await startInstances(openStore);
    // The stand-in home has 1024 MiB free.
    await a.createUploads(owner(), region, { dir: '~', files: [{ name: 'one.bin', size: 600 * MiB }] });
    const error = await rejection(
      b.createUploads(owner(), region, { dir: '~', files: [{ name: 'two.bin', size: 600 * MiB }] }),
    );
    expect(error).toMatchObject({ code: 'COVE_ERR_FILES_HOME_FULL' });
    expect(
      (await b.createUploads(owner(), region, { dir: '~', files: [{ name: 'small', size: 400 * MiB }] }))
        .uploads,
    ).toHaveLength(1);
  });

  it('cancels on one instance an upload started on the other; it is gone for both', async () => {
    const [a, b] = await startInstances(openStore);
    const data = randomBytes(1000);
    const { uploads } = await a.createUploads(owner(), region, {
      dir: '~',
      files: [{ name: 'gone.txt', size: data.length }],
    });
    const ticket = uploads[0] as SingleUpload;
    await put(ticket.url, data);
    await b.cancelUpload(owner(), region, ticket.id);
    const error = await rejection(a.completeUpload(owner(), region, ticket.id, {}));
    expect(error).toBeInstanceOf(CoveError);
    expect(error).toMatchObject({ code: 'COVE_ERR_FILES_UPLOAD_NOT_FOUND' });
    // Another user's id is unknown on every instance too.
    const other = { id: 'someone-else', username: 'eve' } as Parameters<S3FileTransfer['createUploads']>[0];
    expect(await rejection(b.completeUpload(other, region, ticket.id, {}))).toMatchObject({
      code: 'COVE_ERR_FILES_UPLOAD_NOT_FOUND',
    });
    expect(written).toEqual([]);
  });
}

beforeAll(async () => {
  s3 = await TestS3.start();
  dataDir = mkdtempSync(join(tmpdir(), 'cove-shared-uploads-'));
});
afterAll(async () => {
  await s3.destroy();
  rmSync(dataDir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const t of transfers) t.close();
  for (const store of stores) await store.close();
  transfers = [];
  stores = [];
});

describe('a shared SQLite file', () => {
  let n = 0;
  sharedUploadCases(async () => {
    written = [];
    return new SqliteStore(join(dataDir, `shared-${Math.floor(n++ / 2)}.db`));
  });
});

describe('a shared PostgreSQL database', () => {
  let server: TestPostgres;
  let url = '';
  let n = 0;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server.dispose());
  sharedUploadCases(async () => {
    written = [];
    if (n++ % 2 === 0) url = await server.createDatabase(`uploads_${n}`);
    return PostgresStore.open(url, { connectTimeoutMs: 2000 });
  });
});
