/**
 * How a transfer flows beyond the basics of file-transfer.test.ts. Real engine, real loop home,
 * the embedded S3.
 * - The early write: the page reports each stored part (`POST …/uploads/:id/parts/:n`) and the
 *   server starts writing the file into the home while later parts are still on their way. The
 *   file appears only after `complete` and is byte for byte what was sent, a cancel or other ETags
 *   leave no temp file behind, and a report that does not match what S3 holds is refused.
 * - `complete` asked again (its answer was lost) gets the same answer; saved and audited once.
 * - Download progress: `GET …/downloads/progress/:progressId` while the copy into S3 runs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { HomeTestServer, MiB, regionA, type HomeTestUser } from '../homes/home-test-server.js';
import type {
  CompleteUploadResponse,
  DownloadProgressResponse,
  DownloadResponse,
  MultipartUpload,
  SingleUpload,
  UploadResponse,
} from '../../../../server/protocol/files.js';
import type {} from '../../../../server/files/file-service.js';

let server: HomeTestServer;
let alice: HomeTestUser;
let bob: HomeTestUser;

const partSize = 8 * MiB;
const uploads = `/api/environments/${regionA}/uploads`;
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

async function inContainer(script: string): Promise<string> {
  const result = await server.app.environments
    .driver(regionA)
    .exec({ ownerId: alice.id, region: regionA }, ['/bin/sh', '-c', script], { timeoutMs: 60_000 });
  return result.stdout.toString('utf8');
}

/** The helper's temp files in `~` with their sizes (`.cove-upload-<hex>.part`). */
async function tempFiles(): Promise<number[]> {
  const out = await inContainer(
    'for f in ~/.cove-upload-*.part; do [ -f "$f" ] && stat -c %s "$f"; done; true',
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => Number(line));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function start(user: HomeTestUser, name: string, size: number): Promise<MultipartUpload> {
  const response = await server.request(user, 'POST', uploads, { dir: '~', files: [{ name, size }] });
  expect(response.statusCode, response.body).toBe(200);
  const ticket = response.json<UploadResponse>().uploads[0] as MultipartUpload;
  expect(ticket.parts.length).toBe(Math.ceil(size / partSize));
  return ticket;
}

/** PUTs part `n` (1-based) of `data` and returns its ETag. */
async function putPart(ticket: MultipartUpload, n: number, data: Uint8Array): Promise<string> {
  const url = ticket.parts[n - 1]?.url ?? '';
  const body = data.subarray((n - 1) * partSize, n * partSize);
  const response = await fetch(url, { method: 'PUT', body: new Blob([body as Uint8Array<ArrayBuffer>]) });
  expect(response.status).toBe(200);
  return response.headers.get('etag') ?? '';
}

const report = (user: HomeTestUser, id: string, n: number, etag: string) =>
  server.request(user, 'POST', `${uploads}/${id}/parts/${n}`, { etag });

async function complete(id: string, etags: string[]) {
  return server.request(alice, 'POST', `${uploads}/${id}/complete`, {
    parts: etags.map((etag, i) => ({ partNumber: i + 1, etag })),
  });
}

async function stagedOf(id: string): Promise<string[]> {
  const staging = server.app.files.staging.get(regionA);
  if (!staging) throw new Error('no staging for region A');
  const page = await staging.client.send(
    new ListObjectsV2Command({ Bucket: staging.bucket, Prefix: `${staging.prefix}${alice.id}/${id}/` }),
  );
  return (page.Contents ?? []).map((o) => o.Key ?? '');
}

beforeAll(async () => {
  server = await HomeTestServer.start({
    homeSizeBytes: 256 * MiB,
    config: {
      regions: [{ id: regionA, name: 'US East' }],
      files: { partSizeBytes: partSize, multipartThresholdBytes: partSize },
    },
  });
  await server.app.files.checked;
  alice = await server.user('alice');
  bob = await server.user('bob');
}, 120_000);

afterAll(async () => {
  await server?.destroy();
}, 120_000);

describe('early write', () => {
  it('writes reported parts into $HOME while later parts are on their way; the file appears only at complete', async () => {
    const data = randomBytes(5 * partSize - 123);
    const ticket = await start(alice, 'early.bin', data.length);
    const etags: string[] = [];
    for (let n = 1; n <= 4; n++) {
      etags.push(await putPart(ticket, n, data));
      const reported = await report(alice, ticket.id, n, etags[n - 1] as string);
      expect(reported.statusCode, reported.body).toBe(204);
    }
    // Parts 1 to 3 are in the helper's temp file before part 5 even exists in S3.
    const written = await until('the early write', async () => {
      const sizes = await tempFiles();
      return sizes.length === 1 && (sizes[0] as number) >= 3 * partSize ? sizes[0] : undefined;
    });
    expect(written).toBeLessThan(data.length);
    etags.push(await putPart(ticket, 5, data));
    expect((await report(alice, ticket.id, 5, etags[4] as string)).statusCode).toBe(204);
    // Every part is stored and reported, but the last one waits for complete: no file yet.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await inContainer('ls -A ~ | grep -c "^early" || true')).toBe('0\n');
    expect(await tempFiles()).toEqual([4 * partSize]);

    const done = await complete(ticket.id, etags);
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json<CompleteUploadResponse>()).toEqual({
      path: '~/early.bin',
      size: data.length,
      sha256: sha256(data),
    });
    expect((await inContainer('sha256sum ~/early.bin')).split(' ')[0]).toBe(sha256(data));
    expect(await tempFiles()).toEqual([]);
    expect(await stagedOf(ticket.id)).toEqual([]);
  });

  it('a cancel stops the early write: no temp file, nothing staged, the upload gone', async () => {
    const data = randomBytes(3 * partSize);
    const ticket = await start(alice, 'cancelled.bin', data.length);
    for (let n = 1; n <= 2; n++)
      expect((await report(alice, ticket.id, n, await putPart(ticket, n, data))).statusCode).toBe(204);
    await until('the early write', async () => ((await tempFiles()).length === 1 ? true : undefined));

    expect((await server.request(alice, 'DELETE', `${uploads}/${ticket.id}`)).statusCode).toBe(204);
    expect(await tempFiles()).toEqual([]);
    expect(await inContainer('ls -A ~ | grep -c "^cancelled" || true')).toBe('0\n');
    expect(await stagedOf(ticket.id)).toEqual([]);
    expect((await complete(ticket.id, [])).statusCode).toBe(404);
  });

  it('complete with other ETags than reported (a part sent again) writes afresh what S3 holds', async () => {
    const first = randomBytes(3 * partSize);
    const ticket = await start(alice, 'again.bin', first.length);
    const etags: string[] = [];
    for (let n = 1; n <= 3; n++) {
      etags.push(await putPart(ticket, n, first));
      expect((await report(alice, ticket.id, n, etags[n - 1] as string)).statusCode).toBe(204);
    }
    await until('the early write', async () =>
      (await tempFiles()).some((size) => size >= partSize) ? true : undefined,
    );
    // Part 2 sent again with other bytes of the same length: a new ETag that was never reported.
    const second = Buffer.from(first);
    randomBytes(partSize).copy(second, partSize);
    etags[1] = await putPart(ticket, 2, second);

    const done = await complete(ticket.id, etags);
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json<CompleteUploadResponse>().sha256).toBe(sha256(second));
    expect((await inContainer('sha256sum ~/again.bin')).split(' ')[0]).toBe(sha256(second));
    expect(await tempFiles()).toEqual([]);
  });

  it('refuses a report that does not match S3, names no part, or is not the caller’s upload', async () => {
    const data = randomBytes(2 * partSize);
    const ticket = await start(alice, 'refused.bin', data.length);
    const etag = await putPart(ticket, 1, data);

    const wrongEtag = await report(alice, ticket.id, 1, '"0123456789abcdef0123456789abcdef"');
    expect(wrongEtag.statusCode).toBe(400);
    expect(wrongEtag.json()).toMatchObject({
      code: 'COVE_ERR_FILES_PARTS_INVALID',
      message: expect.stringContaining('part 1 is not the one that was uploaded'),
    });
    const notStored = await report(alice, ticket.id, 2, etag);
    expect(notStored.statusCode).toBe(404);
    expect(notStored.json()).toMatchObject({ code: 'COVE_ERR_FILES_NOT_STAGED' });
    const outOfRange = await report(alice, ticket.id, 3, etag);
    expect(outOfRange.statusCode).toBe(400);
    expect(outOfRange.json()).toMatchObject({ message: expect.stringContaining('there is no part 3') });
    expect((await report(alice, ticket.id, 0, etag)).statusCode).toBe(400);
    // Bob cannot even learn the upload exists.
    const foreign = await report(bob, ticket.id, 1, etag);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json()).toMatchObject({ code: 'COVE_ERR_FILES_UPLOAD_NOT_FOUND' });
    // Nothing started: none of the refused reports began a write.
    expect(await tempFiles()).toEqual([]);

    const small = await server.request(alice, 'POST', uploads, {
      dir: '~',
      files: [{ name: 'small.txt', size: 10 }],
    });
    const single = small.json<UploadResponse>().uploads[0] as SingleUpload;
    const noParts = await report(alice, single.id, 1, etag);
    expect(noParts.statusCode).toBe(400);
    expect(noParts.json()).toMatchObject({ message: expect.stringContaining('single PUT') });

    for (const id of [ticket.id, single.id])
      expect((await server.request(alice, 'DELETE', `${uploads}/${id}`)).statusCode).toBe(204);
  });
});

describe('complete asked again', () => {
  it('gives a finished upload the same answer again, saved and audited once; never to another user', async () => {
    const data = randomBytes(2 * partSize + 5);
    const ticket = await start(alice, 'twice.bin', data.length);
    const etags = [
      await putPart(ticket, 1, data),
      await putPart(ticket, 2, data),
      await putPart(ticket, 3, data),
    ];
    const first = await complete(ticket.id, etags);
    expect(first.statusCode, first.body).toBe(200);
    const again = await complete(ticket.id, etags);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual(first.json());
    expect(first.json<CompleteUploadResponse>().path).toBe('~/twice.bin');
    expect(await inContainer('ls -A ~ | grep -c "^twice" || true')).toBe('1\n');
    const audited = await server.store.audit.list({ action: 'file.upload' });
    expect(audited.filter((e) => JSON.stringify(e).includes('~/twice.bin'))).toHaveLength(1);

    const foreign = await server.request(bob, 'POST', `${uploads}/${ticket.id}/complete`, {
      parts: etags.map((etag, i) => ({ partNumber: i + 1, etag })),
    });
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json()).toMatchObject({ code: 'COVE_ERR_FILES_UPLOAD_NOT_FOUND' });
    // A finished upload cannot be cancelled any more.
    expect((await server.request(alice, 'DELETE', `${uploads}/${ticket.id}`)).statusCode).toBe(404);
    expect(await inContainer('sha256sum ~/twice.bin')).toContain(sha256(data));
  });
});

describe('download progress', () => {
  it('tells the page how far the copy into S3 got while it runs, to its owner only', async () => {
    const size = 96 * MiB;
    expect(
      await inContainer(`head -c ${size} /dev/urandom > ~/progress.bin; stat -c %s ~/progress.bin`),
    ).toBe(`${size}\n`);
    const progressId = `p${Date.now().toString(36)}abcdef`;
    const progressUrl = `/api/environments/${regionA}/downloads/progress/${progressId}`;
    expect((await server.request(alice, 'GET', progressUrl)).statusCode).toBe(404);

    let settled = false;
    const downloading = server
      .request(alice, 'POST', `/api/environments/${regionA}/downloads`, {
        path: '~/progress.bin',
        progressId,
      })
      .finally(() => (settled = true));
    const seen: DownloadProgressResponse[] = [];
    const bobSaw = new Set<number>();
    while (!settled) {
      const answer = await server.request(alice, 'GET', progressUrl);
      if (answer.statusCode === 200) {
        seen.push(answer.json<DownloadProgressResponse>());
        bobSaw.add((await server.request(bob, 'GET', progressUrl)).statusCode);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const done = await downloading;
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json<DownloadResponse>().size).toBe(size);

    // Seen mid-way, growing, never past the size; Bob never sees it.
    expect(
      seen.some((p) => p.bytes > 0 && p.bytes < size),
      JSON.stringify(seen.slice(0, 5)),
    ).toBe(true);
    for (const p of seen) expect(p.size).toBe(size);
    const bytes = seen.map((p) => p.bytes);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(Math.max(...bytes)).toBeLessThanOrEqual(size);
    expect([...bobSaw]).toEqual([404]);
    // Gone once the download answered.
    expect((await server.request(alice, 'GET', progressUrl)).statusCode).toBe(404);
    await inContainer('rm ~/progress.bin');
  });

  it('refuses a progress id outside 8-64 of A-Z a-z 0-9 _ - (in the request and the query)', async () => {
    const refused = await server.request(alice, 'POST', `/api/environments/${regionA}/downloads`, {
      path: '~/x',
      progressId: '../../etc',
    });
    expect(refused.statusCode).toBe(400);
    expect(
      (await server.request(alice, 'GET', `/api/environments/${regionA}/downloads/progress/short`))
        .statusCode,
    ).toBe(400);
  });
});
