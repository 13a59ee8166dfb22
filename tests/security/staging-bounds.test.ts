/**
 * H03 (staging): no user can make Cove hold more than a bounded amount of their data outside
 * their home (penetration test, issue 26). A sparse file costs nothing in the home but every
 * download of it stages its full length on the host, so the attack is `truncate -s 900M` and
 * download requests in parallel; then folder archives, upload parts, and the URLs of uploads that
 * are finished or cancelled. Real Docker, real loop homes, the embedded S3 under the data
 * directory (whose disk use is measured), and a configured S3 (s3rver without Cove's revocation)
 * for what a real S3 cannot refuse.
 */
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HomeTestServer,
  MiB,
  regionA,
  regionB,
  type HomeTestUser,
} from '../integration/server/homes/home-test-server.js';
import { formatHomeBytes } from '../../server/protocol/api.js';
import type {
  DownloadResponse,
  MultipartUpload,
  SingleUpload,
  UploadResponse,
} from '../../server/protocol/files.js';
import type {} from '../../server/files/file-service.js';
import { TestS3 } from '../helpers/s3.js';

/** The per-user bound in these tests (decimal, so the messages read round numbers). */
const bound = 64_000_000;
const downloadExpiryS = 60;

async function inContainer(server: HomeTestServer, user: HomeTestUser, region: string, script: string) {
  const result = await server.app.environments
    .driver(region)
    .exec({ ownerId: user.id, region }, ['/bin/sh', '-c', script], { timeoutMs: 60_000 });
  expect(result.exitCode, result.stderr.toString()).toBe(0);
  return result.stdout.toString('utf8');
}

/** Bytes the files under `dir` really take on disk (blocks, not apparent length). */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  const names = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  for (const name of names) {
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info?.isFile()) total += info.blocks * 512;
  }
  return total;
}

/** The object key a presigned path-style URL names. */
function keyOf(url: string): string {
  const [, ...key] = new URL(url).pathname.slice(1).split('/');
  return key.map(decodeURIComponent).join('/');
}

async function exists(server: HomeTestServer, region: string, key: string): Promise<boolean> {
  const staging = server.app.files.staging.get(region);
  if (!staging) throw new Error(`no staging in ${region}`);
  try {
    await staging.client.send(new HeadObjectCommand({ Bucket: staging.bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return false;
    throw error;
  }
}

/** Polls (bounded) until `check` holds; fails with `what` otherwise. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`);
}

const put = async (url: string, data: Uint8Array): Promise<Response> => {
  const response = await fetch(url, { method: 'PUT', body: new Blob([data as Uint8Array<ArrayBuffer>]) });
  await response.arrayBuffer();
  return response;
};

const stagingFull = (usedBytes: number, neededBytes: number) => ({
  code: 'COVE_ERR_FILES_STAGING_FULL',
  message: `Cove is already holding ${formatHomeBytes(usedBytes)} of your files for transfer and holds at most ${formatHomeBytes(bound)} per user. Finish or cancel your other uploads, fetch your downloads (unfetched ones expire within minutes), then try again.`,
  usedBytes,
  neededBytes,
  limitBytes: bound,
});

describe('H03 staging on the embedded S3: bytes, downloads and expiry per user', () => {
  let server: HomeTestServer;
  let alice: HomeTestUser;
  let s3Dir: string;
  const downloads = `/api/environments/${regionA}/downloads`;
  const uploads = `/api/environments/${regionA}/uploads`;
  const download = (path: string) => server.request(alice, 'POST', downloads, { path });
  const stagedKeys = async (): Promise<string[]> => {
    const staging = server.app.files.staging.get(regionA);
    if (!staging) throw new Error('no staging in region A');
    const page = await staging.client.send(
      new ListObjectsV2Command({ Bucket: staging.bucket, Prefix: `${staging.prefix}${alice.id}/` }),
    );
    return (page.Contents ?? []).map((o) => o.Key ?? '');
  };

  beforeAll(async () => {
    server = await HomeTestServer.start({
      homeSizeBytes: 96 * MiB,
      config: {
        files: {
          maxStagedBytesPerUser: bound,
          maxConcurrentDownloadsPerUser: 2,
          downloadExpiryS,
          stagingReserveBytes: 0,
        },
        sandbox: { graceS: 60, memoryBytes: 256 * MiB },
      },
    });
    await server.app.files.checked;
    s3Dir = server.app.files.embedded?.directory ?? '';
    expect(s3Dir).not.toBe('');
    alice = await server.user('filler');
    await server.app.environments.ensure({ id: alice.id, username: alice.username }, regionA);
  }, 120_000);

  afterAll(async () => {
    await server?.destroy();
  }, 120_000);

  it('H03 a 900M sparse file (451 KB in the home) is refused by its length before anything is staged', async () => {
    await inContainer(server, alice, regionA, 'truncate -s 900M ~/sparse.bin');
    const before = await diskUsage(s3Dir);
    const refused = await download('~/sparse.bin');
    expect(refused.statusCode, refused.body).toBe(413);
    expect(refused.json()).toEqual({
      code: 'COVE_ERR_FILES_TOO_LARGE',
      message: `Files can be at most ${formatHomeBytes(bound)}. Split the file (for example with split -b) or compress it.`,
      limitBytes: bound,
    });
    expect(await stagedKeys()).toEqual([]);
    expect(await diskUsage(s3Dir)).toBeLessThanOrEqual(before + MiB);
    await inContainer(server, alice, regionA, 'rm ~/sparse.bin');
  }, 60_000);

  it('H03 8 parallel downloads of a 40M sparse file: one is staged, the rest refused, the data directory stays under the bound', async () => {
    await inContainer(server, alice, regionA, 'truncate -s 40M ~/sparse40.bin');
    const before = await diskUsage(s3Dir);
    let peak = before;
    let measuring = true;
    const measure = (async () => {
      while (measuring) {
        peak = Math.max(peak, await diskUsage(s3Dir));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const answers = await Promise.all(Array.from({ length: 8 }, () => download('~/sparse40.bin')));
    measuring = false;
    await measure;
    peak = Math.max(peak, await diskUsage(s3Dir));

    const ok = answers.filter((a) => a.statusCode === 200);
    expect(ok).toHaveLength(1);
    const refused = answers.filter((a) => a.statusCode !== 200);
    for (const answer of refused) {
      expect(answer.statusCode, answer.body).toBe(429);
      const body = answer.json<{ code: string }>();
      if (body.code === 'COVE_ERR_FILES_STAGING_FULL') expect(body).toEqual(stagingFull(40 * MiB, 40 * MiB));
      else
        expect(body).toEqual({
          code: 'COVE_ERR_FILES_TOO_MANY_DOWNLOADS',
          message: 'You already have 2 downloads being prepared. Wait for one to finish, then try again.',
          limit: 2,
        });
    }
    expect(refused.some((a) => a.json<{ code: string }>().code === 'COVE_ERR_FILES_STAGING_FULL')).toBe(true);
    // 40 MiB of zeros on disk for the one staged copy, never eight.
    expect(peak - before).toBeLessThanOrEqual(bound);
    expect(peak - before).toBeGreaterThanOrEqual(40 * MiB);
    expect(await stagedKeys()).toHaveLength(1);

    // Fetched: its copy goes at once, and the bound is free again.
    const file = (ok[0] as (typeof ok)[number]).json<DownloadResponse>();
    const got = await fetch(file.url);
    expect(got.status).toBe(200);
    expect((await got.arrayBuffer()).byteLength).toBe(40 * MiB);
    await eventually(
      async () => !(await exists(server, regionA, keyOf(file.url))),
      'the fetched copy deleted',
    );
    expect((await fetch(file.url)).status).toBe(404);
    // Its blocks are freed once the S3 has closed the file it served.
    await eventually(async () => (await diskUsage(s3Dir)) <= before + MiB, 'the fetched copy freed on disk');
    const again = await download('~/sparse40.bin');
    expect(again.statusCode, again.body).toBe(200);
    await fetch(again.json<DownloadResponse>().url).then((r) => r.arrayBuffer());
    await eventually(async () => (await stagedKeys()).length === 0, 'the second copy deleted');
  }, 120_000);

  it('H03 6 downloads at once: at most 2 are copied at a time, the others get 429 COVE_ERR_FILES_TOO_MANY_DOWNLOADS', async () => {
    await inContainer(server, alice, regionA, 'head -c 1048576 /dev/urandom > ~/small.bin');
    const answers = await Promise.all(Array.from({ length: 6 }, () => download('~/small.bin')));
    const codes = answers.map((a) => (a.statusCode === 200 ? 'ok' : a.json<{ code: string }>().code));
    expect(codes.filter((c) => c === 'ok').length).toBeGreaterThanOrEqual(1);
    expect(codes.filter((c) => c === 'COVE_ERR_FILES_TOO_MANY_DOWNLOADS').length).toBeGreaterThanOrEqual(1);
    expect(
      codes.every((c) => c === 'ok' || c === 'COVE_ERR_FILES_TOO_MANY_DOWNLOADS'),
      codes.join(),
    ).toBe(true);
    for (const answer of answers.filter((a) => a.statusCode === 200))
      await fetch(answer.json<DownloadResponse>().url).then((r) => r.arrayBuffer());
    await eventually(async () => (await stagedKeys()).length === 0, 'every fetched copy deleted');
  }, 60_000);

  it('H03 an unfetched download expires after files.downloadExpiryS: its copy is deleted and its bytes count no more', async () => {
    const held = await download('~/sparse40.bin');
    expect(held.statusCode, held.body).toBe(200);
    const url = held.json<DownloadResponse>().url;
    expect(await exists(server, regionA, keyOf(url))).toBe(true);
    expect((await download('~/sparse40.bin')).json()).toEqual(stagingFull(40 * MiB, 40 * MiB));

    server.clockOffsetMs += (downloadExpiryS + 1) * 1000;
    await eventually(async () => !(await exists(server, regionA, keyOf(url))), 'the expired copy deleted');
    expect((await fetch(url)).status).toBe(404);
    const after = await download('~/sparse40.bin');
    expect(after.statusCode, after.body).toBe(200);
    await fetch(after.json<DownloadResponse>().url).then((r) => r.arrayBuffer());
    await eventually(async () => (await stagedKeys()).length === 0, 'the new copy deleted');
  }, 60_000);

  it('H03 a folder (.tar.gz) counts as it is written: past the bound it is refused and nothing of it stays', async () => {
    await inContainer(
      server,
      alice,
      regionA,
      'mkdir -p ~/folder && head -c 31457280 /dev/urandom > ~/folder/r.bin',
    );
    const held = await download('~/sparse40.bin');
    expect(held.statusCode).toBe(200);
    const before = await diskUsage(s3Dir);

    const refused = await download('~/folder');
    expect(refused.statusCode, refused.body).toBe(429);
    expect(refused.json<{ code: string; usedBytes: number }>()).toMatchObject({
      code: 'COVE_ERR_FILES_STAGING_FULL',
      usedBytes: 40 * MiB,
      limitBytes: bound,
    });
    expect(await stagedKeys()).toEqual([keyOf(held.json<DownloadResponse>().url)]);
    // The archive's parts written before the refusal are deleted (on a busy machine not at once).
    await eventually(
      async () => (await diskUsage(s3Dir)) <= before + MiB,
      'the refused archive removed from disk',
    );

    // Once the held copy is fetched the archive fits, and then it holds the bound itself.
    await fetch(held.json<DownloadResponse>().url).then((r) => r.arrayBuffer());
    await eventually(async () => (await stagedKeys()).length === 0, 'the held copy deleted');
    const archive = await download('~/folder');
    expect(archive.statusCode, archive.body).toBe(200);
    const size = archive.json<DownloadResponse>().size;
    expect(size).toBeGreaterThan(30 * MiB);
    expect((await download('~/sparse40.bin')).json()).toEqual(stagingFull(size, 40 * MiB));
    await fetch(archive.json<DownloadResponse>().url).then((r) => r.arrayBuffer());
    await eventually(async () => (await stagedKeys()).length === 0, 'the archive deleted');
  }, 120_000);

  it("H03 an upload's declared size counts from its URLs until it is saved or cancelled", async () => {
    const asked = await server.request(alice, 'POST', uploads, {
      dir: '~',
      files: [{ name: 'up.bin', size: 40 * MiB }],
    });
    expect(asked.statusCode, asked.body).toBe(200);
    const ticket = asked.json<UploadResponse>().uploads[0] as MultipartUpload;
    expect((await download('~/sparse40.bin')).json()).toEqual(stagingFull(40 * MiB, 40 * MiB));
    const more = await server.request(alice, 'POST', uploads, {
      dir: '~',
      files: [{ name: 'x', size: 30 * MiB }],
    });
    expect(more.json()).toEqual(stagingFull(40 * MiB, 30 * MiB));

    const cancelled = await server.request(alice, 'DELETE', `${uploads}/${ticket.id}`);
    expect(cancelled.statusCode).toBe(204);
    const after = await download('~/sparse40.bin');
    expect(after.statusCode, after.body).toBe(200);
    await fetch(after.json<DownloadResponse>().url).then((r) => r.arrayBuffer());
    await eventually(async () => (await stagedKeys()).length === 0, 'the copy deleted');
  }, 60_000);

  it('H03 PUTs to a finished or cancelled upload get 403 from the embedded S3 and store nothing', async () => {
    const data = randomBytes(64 * 1024);
    const ask = async (size: number) => {
      const asked = await server.request(alice, 'POST', uploads, {
        dir: '~',
        files: [{ name: 'late.bin', size }],
      });
      expect(asked.statusCode, asked.body).toBe(200);
      return asked.json<UploadResponse>().uploads[0] as SingleUpload | MultipartUpload;
    };
    const expectRefused = async (url: string, bytes: Uint8Array) => {
      const response = await fetch(url, {
        method: 'PUT',
        body: new Blob([bytes as Uint8Array<ArrayBuffer>]),
      });
      expect(response.status).toBe(403);
      expect(await response.text()).toContain('<Code>AccessDenied</Code>');
      expect(await exists(server, regionA, keyOf(url))).toBe(false);
    };

    const finished = (await ask(data.length)) as SingleUpload;
    expect((await put(finished.url, data)).status).toBe(200);
    const done = await server.request(alice, 'POST', `${uploads}/${finished.id}/complete`, {});
    expect(done.statusCode, done.body).toBe(200);
    await expectRefused(finished.url, data);

    const cancelled = (await ask(data.length)) as SingleUpload;
    expect((await server.request(alice, 'DELETE', `${uploads}/${cancelled.id}`)).statusCode).toBe(204);
    await expectRefused(cancelled.url, data);

    // Multipart: every part's URL, also one never used before `complete`.
    const big = randomBytes(20 * MiB);
    const multi = (await ask(big.length)) as MultipartUpload;
    const parts = [];
    for (const part of multi.parts) {
      const slice = big.subarray((part.partNumber - 1) * multi.partSize, part.partNumber * multi.partSize);
      const sent = await put(part.url, slice);
      expect(sent.status).toBe(200);
      parts.push({ partNumber: part.partNumber, etag: sent.headers.get('etag') ?? '' });
    }
    const saved = await server.request(alice, 'POST', `${uploads}/${multi.id}/complete`, { parts });
    expect(saved.statusCode, saved.body).toBe(200);
    await expectRefused(multi.parts[0]?.url ?? '', big.subarray(0, multi.partSize));
    expect(await stagedKeys()).toEqual([]);
  }, 120_000);
});

describe('H03 staging with a configured S3 and on a full disk', () => {
  let s3: TestS3;
  let server: HomeTestServer;
  let bob: HomeTestUser;
  const small = 3 * MiB;

  beforeAll(async () => {
    s3 = await TestS3.start();
    // A configured bucket takes the server's default credential chain.
    Object.assign(process.env, TestS3.credentialsEnv());
    server = await HomeTestServer.start({
      homeSizeBytes: 96 * MiB,
      config: {
        regions: [
          // s3rver as a configured S3: presigned URLs it cannot revoke, like AWS.
          { id: regionA, name: 'US East', s3: s3.regionConfig() },
          // The embedded S3 with more reserve than any disk has.
          { id: regionB, name: 'Europe' },
        ],
        files: { maxStagedBytesPerUser: 4 * MiB, stagingReserveBytes: 1024 ** 5 },
      },
    });
    await server.app.files.checked;
    bob = await server.user('late-putter');
  }, 120_000);

  afterAll(async () => {
    await server?.destroy();
    await s3?.destroy();
  }, 120_000);

  it('H03 the staging disk down to its reserve: uploads and downloads get 507 COVE_ERR_FILES_HOST_FULL, no environment started', async () => {
    const expected = {
      code: 'COVE_ERR_FILES_HOST_FULL',
      message:
        'The server is short of disk space for file transfers, so nothing was transferred; your files and terminal are not affected. Try again later, or tell your administrator.',
    };
    const down = await server.request(bob, 'POST', `/api/environments/${regionB}/downloads`, { path: '~/x' });
    expect(down.statusCode, down.body).toBe(507);
    expect(down.json()).toEqual(expected);
    const up = await server.request(bob, 'POST', `/api/environments/${regionB}/uploads`, {
      dir: '~',
      files: [{ name: 'x', size: 10 }],
    });
    expect(up.statusCode, up.body).toBe(507);
    expect(up.json()).toEqual(expected);
    expect((await server.app.environments.status({ ownerId: bob.id, region: regionB })).state).toBe(
      'missing',
    );
  });

  it('H03 a PUT after complete on a configured S3 is deleted by the sweep at once and counts against the bound until the URLs expire', async () => {
    const uploads = `/api/environments/${regionA}/uploads`;
    const data = randomBytes(small);
    const asked = await server.request(bob, 'POST', uploads, {
      dir: '~',
      files: [{ name: 'a.bin', size: small }],
    });
    expect(asked.statusCode, asked.body).toBe(200);
    const ticket = asked.json<UploadResponse>().uploads[0] as SingleUpload;
    expect((await put(ticket.url, data)).status).toBe(200);
    const done = await server.request(bob, 'POST', `${uploads}/${ticket.id}/complete`, {});
    expect(done.statusCode, done.body).toBe(200);

    // This S3 cannot refuse it: the object is back.
    expect((await put(ticket.url, data)).status).toBe(200);
    const key = keyOf(ticket.url);
    expect(await exists(server, regionA, key)).toBe(true);
    // Until the URLs expire the finished upload still holds its bytes.
    const next = await server.request(bob, 'POST', uploads, {
      dir: '~',
      files: [{ name: 'b.bin', size: small }],
    });
    expect(next.statusCode, next.body).toBe(429);
    expect(next.json<{ code: string }>().code).toBe('COVE_ERR_FILES_STAGING_FULL');

    // The next sweep deletes it, not the retention (a day) later.
    await server.app.files.sweep.run();
    expect(await exists(server, regionA, key)).toBe(false);

    // Past the URLs' expiry the bytes are free again.
    server.clockOffsetMs += (server.config.files.presignExpiryS + 61) * 1000;
    await server.app.files.transfer.expireStaged();
    const later = await server.request(bob, 'POST', uploads, {
      dir: '~',
      files: [{ name: 'b.bin', size: small }],
    });
    expect(later.statusCode, later.body).toBe(200);
    expect(await s3.keys(`cove-staging/${bob.id}/${ticket.id}`)).toEqual([]);
  }, 120_000);
});
