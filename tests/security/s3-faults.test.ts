/**
 * F05: S3 fails before and during file transfers (SECURITY-TESTS.md). A real Cove (real Docker,
 * real loop homes) whose region S3 is a real s3rver behind the loopback fault proxy, so Cove's own
 * S3 calls and the presigned URLs both go through it. For each phase (presign, a part PUT, the
 * fetch into the container, the download's staging PUT) and each fault (blackhole: the peer waits
 * for its timeout; reset: TCP RST), everything is driven through the HTTP API the page uses:
 * 503 `COVE_ERR_FILES_UNAVAILABLE` within `files.s3TimeoutMs` and a margin, the terminal echoes,
 * nothing partial lands in `$HOME`, the file there stays intact, and a retry after recovery works.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { TestS3, testBucket } from '../helpers/s3.js';
import {
  HomeTestServer,
  MiB,
  regionA,
  regionB,
  type HomeTestUser,
} from '../integration/server/homes/home-test-server.js';
import type { TerminalTestClient } from '../unit/server/terminals/ws-test-client.js';
import type {
  CompleteUploadResponse,
  DownloadResponse,
  UploadResponse,
  UploadTicket,
} from '../../server/protocol/files.js';
import type {} from '../../server/files/file-service.js';

const s3TimeoutMs = 3000;
/** Time to answer after S3 stops answering: the timeout, plus room for cleanup on a busy machine. */
const deadlineMs = s3TimeoutMs + 5000;
/** Like the page: a part PUT with no answer for this long is given up and retried. */
const putStallMs = 2000;
const prefix = 'cove-staging/';
const unavailable = {
  code: 'COVE_ERR_FILES_UNAVAILABLE',
  message: 'File transfer is unavailable right now; your terminal is not affected. Try again in a minute.',
};
/** Nothing about the S3 behind Cove, the network or the code may reach the user. */
const internals =
  /127\.0\.0\.1|localhost|ECONN|EPIPE|socket|timeout|abort|S3rver|cove-test-staging|stack|\bat \S+ \(/i;

type Fault = 'blackhole' | 'reset';
type PartEtag = { partNumber: number; etag: string };

let s3: TestS3;
let proxy: FaultProxy;
let server: HomeTestServer;
let alice: HomeTestUser;
let terminal: TerminalTestClient;
const savedEnv = new Map<string, string | undefined>();
/** Unhandled rejections while a test runs: in production Node ends the Cove process on one. */
const rejections: unknown[] = [];
const onRejection = (reason: unknown): void => void rejections.push(reason);

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const uploads = `/api/environments/${regionA}/uploads`;
const aliceKey = () => ({ ownerId: alice.id, region: regionA });

async function inContainer(script: string): Promise<string> {
  const result = await server.app.environments
    .driver(regionA)
    .exec(aliceKey(), ['/bin/sh', '-c', script], { timeoutMs: 60_000 });
  return result.stdout.toString('utf8');
}

/** Every entry of the home with its size, dotfiles included (the shell's history aside). */
const homeListing = (): Promise<string> =>
  inContainer(`cd ~ && find . -mindepth 1 ! -name .bash_history -printf '%p %s\\n' | LC_ALL=C sort`);

const homeSha = async (name: string): Promise<string> =>
  (await inContainer(`sha256sum ~/${name}`)).split(' ')[0] ?? '';

function fault(kind: Fault): void {
  if (kind === 'blackhole') proxy.blackhole();
  else proxy.reset();
}

async function until(what: string, condition: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** How long to wait for an answer at all: past it the request counts as hung (a test failure). */
const giveUpMs = 60_000;

interface Answer {
  readonly response: LightMyRequestResponse | undefined;
  readonly ms: number;
}

/** The answer to a request S3 is failing under, and how long it took from `since` (the fault). */
async function answer(pending: Promise<LightMyRequestResponse>, since = Date.now()): Promise<Answer> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), giveUpMs)));
  try {
    const response = await Promise.race([pending, hung]);
    return { response, ms: Date.now() - since };
  } finally {
    clearTimeout(timer);
  }
}

/** 503 "file transfer unavailable" within the deadline (the time is checked softly to show both). */
function expectUnavailableSoon(result: Answer): void {
  expect(result.response, `no answer within ${giveUpMs} ms of the fault`).toBeDefined();
  expect.soft(result.ms, 'ms from the fault to the 503').toBeLessThan(deadlineMs);
  if (result.response) expectUnavailable(result.response);
}

function expectUnavailable(response: LightMyRequestResponse): void {
  expect(response.statusCode, response.body).toBe(503);
  expect(response.json()).toEqual(unavailable);
  expect(response.body).not.toMatch(internals);
}

/** The user's shell in the same environment still runs commands. */
async function terminalEchoes(): Promise<void> {
  const tag = randomBytes(3).toString('hex');
  expect(await server.run(terminal, `echo alive-${tag}-$((40+2))`)).toContain(`alive-${tag}-42`);
}

/** The terminal answers while `pending` (a request stuck on S3) runs; says whether it was still pending. */
async function echoesWhile(pending: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void pending.then(
    () => (settled = true),
    () => (settled = true),
  );
  await terminalEchoes();
  return !settled;
}

async function presign(name: string, size: number): Promise<UploadTicket> {
  const response = await server.request(alice, 'POST', uploads, {
    dir: '~',
    files: [{ name, size }],
    onConflict: 'replace',
  });
  expect(response.statusCode, response.body).toBe(200);
  const ticket = response.json<UploadResponse>().uploads[0];
  if (!ticket) throw new Error('no upload ticket');
  return ticket;
}

const partBytes = (ticket: UploadTicket, data: Uint8Array, partNumber: number): Uint8Array =>
  'parts' in ticket ? data.subarray((partNumber - 1) * ticket.partSize, partNumber * ticket.partSize) : data;

/**
 * PUTs like the page (fetch to the presigned URL, a part tried up to 3 times on a network error:
 * a pooled connection the proxy ended meanwhile fails at once); the ETag of each part.
 */
async function put(url: string, body: Uint8Array): Promise<string> {
  const attempt = () => fetch(url, { method: 'PUT', body: new Blob([body as Uint8Array<ArrayBuffer>]) });
  const response = await attempt()
    .catch(async () => attempt())
    .catch(async () => attempt());
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return response.headers.get('etag') ?? '';
}

async function putParts(ticket: UploadTicket, data: Uint8Array, skip?: number): Promise<PartEtag[]> {
  if (!('parts' in ticket)) return [{ partNumber: 1, etag: await put(ticket.url, data) }];
  const done: PartEtag[] = [];
  for (const part of ticket.parts) {
    if (part.partNumber === skip) continue;
    done.push({
      partNumber: part.partNumber,
      etag: await put(part.url, partBytes(ticket, data, part.partNumber)),
    });
  }
  return done;
}

const complete = (ticket: UploadTicket, parts: PartEtag[]): Promise<LightMyRequestResponse> =>
  server.request(alice, 'POST', `${uploads}/${ticket.id}/complete`, 'parts' in ticket ? { parts } : {});

async function uploadAll(name: string, data: Uint8Array): Promise<CompleteUploadResponse> {
  const ticket = await presign(name, data.length);
  const response = await complete(ticket, await putParts(ticket, data));
  expect(response.statusCode, response.body).toBe(200);
  return response.json<CompleteUploadResponse>();
}

/**
 * A part PUT that breaks mid-body: half the bytes go, the fault hits, the rest follows. What the
 * client saw: `status <n>`, an error code, or `stalled` (no answer within putStallMs).
 */
function interruptedPut(url: string, body: Uint8Array, kind: Fault): Promise<string> {
  const target = new URL(url);
  const accepted = proxy.acceptedAt.length;
  return new Promise((resolve) => {
    const request = httpRequest({
      hostname: target.hostname,
      port: target.port,
      path: `${target.pathname}${target.search}`,
      method: 'PUT',
      agent: false,
      headers: { 'content-length': String(body.length) },
    });
    let settled = false;
    const finish = (outcome: string): void => {
      if (settled) return;
      settled = true;
      request.destroy();
      resolve(outcome);
    };
    request.on('response', (response) => {
      response.resume();
      finish(`status ${response.statusCode ?? 0}`);
    });
    request.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    request.setTimeout(putStallMs, () => finish('stalled'));
    const half = Math.floor(body.length / 2);
    request.write(body.subarray(0, half), () => {
      void until('the proxy to accept the PUT', () => proxy.acceptedAt.length > accepted).then(() => {
        fault(kind);
        request.end(body.subarray(half));
      });
    });
  });
}

/** Staged objects in the bucket, read past the proxy. */
const staged = (): Promise<string[]> => s3.keys(prefix);

/**
 * An object S3 is receiving for alice right now: its file under s3rver's directory grows while a
 * PUT streams in (the embedded S3 writes `<object>.incoming-<random>` and renames it when complete).
 */
async function growingStagedObject(): Promise<boolean> {
  const dir = join(s3.directory, testBucket, ...prefix.split('/').filter(Boolean), alice.id);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.includes('._S3rver_object'))) {
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info && info.size > 0) return true;
  }
  return false;
}

/** The helper's temp file in the home (read on the host's mount) once bytes arrive in it. */
async function growingTempFile(): Promise<boolean> {
  const home = server.volumes.mountPath(aliceKey());
  for (const name of await readdir(home).catch(() => [] as string[])) {
    if (!name.startsWith('.cove-upload-')) continue;
    const info = await stat(join(home, name)).catch(() => undefined);
    if (info && info.size > 0) return true;
  }
  return false;
}

/**
 * A moment past the staging retention, to sweep as of. Never by moving the server's clock: its
 * session checks and idle terminals read the same clock, and a day's jump ended the test's
 * terminal (and so stopped its environment) whenever one of them ran during the sweep.
 */
const afterRetention = (): number => server.now() + (server.config.files.stagingRetentionS + 60) * 1000;

/** Runs the staging sweep as if the retention had passed, then checks the bucket is empty. */
async function sweepAndExpectNothingStaged(): Promise<void> {
  await server.app.files.sweep.run(afterRetention());
  expect(await staged()).toEqual([]);
}

async function downloadBytes(path: string): Promise<{ file: DownloadResponse; sha: string }> {
  const response = await server.request(alice, 'POST', `/api/environments/${regionA}/downloads`, { path });
  expect(response.statusCode, response.body).toBe(200);
  const file = response.json<DownloadResponse>();
  const got = await fetch(file.url);
  expect(got.status).toBe(200);
  return { file, sha: sha256(new Uint8Array(await got.arrayBuffer())) };
}

beforeAll(async () => {
  process.on('unhandledRejection', onRejection);
  s3 = await TestS3.start();
  proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
  // A configured bucket takes the server's default credential chain.
  for (const [name, value] of Object.entries(TestS3.credentialsEnv())) {
    savedEnv.set(name, process.env[name]);
    process.env[name] = value;
  }
  const regionS3 = { ...s3.regionConfig(prefix), endpoint: proxy.url };
  server = await HomeTestServer.start({
    homeSizeBytes: 256 * MiB,
    config: {
      regions: [
        { id: regionA, name: 'US East', s3: regionS3 },
        { id: regionB, name: 'Europe', s3: regionS3 },
      ],
      files: { partSizeBytes: 5 * MiB, multipartThresholdBytes: 5 * MiB, s3TimeoutMs },
    },
  });
  await server.app.files.checked;
  expect(server.app.files.transfer.problems(regionA)).toBeUndefined();
  alice = await server.user('alice');
  terminal = await server.shell(alice, regionA);
  await inContainer('head -c 1000000 /dev/urandom > ~/keep.bin && head -c 48M /dev/urandom > ~/big.bin');
}, 180_000);

afterEach(async () => {
  proxy?.restore();
  // A failed test leaves its staged objects; the next one starts from an empty bucket.
  await server.app.files.sweep.run(afterRetention()).catch(() => undefined);
  const seen = rejections.splice(0).map((reason) => String(reason));
  expect(seen, 'unhandled rejections (each would end a production Cove process)').toEqual([]);
});

afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  await proxy?.close();
  await server?.destroy();
  await s3?.destroy();
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
}, 180_000);

describe.each<Fault>(['blackhole', 'reset'])('F05 S3 %s', (kind) => {
  it(`F05 ${kind} at presign: upload and download requests get 503 "file transfer unavailable" within the timeout while the terminal echoes`, async () => {
    const before = await homeListing();
    const stagedBefore = await staged();
    fault(kind);

    const uploadRequest = answer(
      server.request(alice, 'POST', uploads, { dir: '~', files: [{ name: 'new.bin', size: 12 * MiB }] }),
    );
    const stillPending = await echoesWhile(uploadRequest);
    // A blackhole makes Cove wait for its timeout; the terminal must not wait with it.
    if (kind === 'blackhole') expect(stillPending).toBe(true);
    const upload = await uploadRequest;
    expectUnavailableSoon(upload);

    const downloadRequest = answer(
      server.request(alice, 'POST', `/api/environments/${regionA}/downloads`, { path: '~/keep.bin' }),
    );
    await echoesWhile(downloadRequest);
    const download = await downloadRequest;
    expectUnavailableSoon(download);

    expect(await homeListing()).toBe(before);
    proxy.restore();
    expect(await staged()).toEqual(stagedBefore);
    const data = randomBytes(12 * MiB);
    expect((await uploadAll('new.bin', data)).sha256).toBe(sha256(data));
    expect(await homeSha('new.bin')).toBe(sha256(data));
    expect((await downloadBytes('~/new.bin')).sha).toBe(sha256(data));
    await inContainer('rm ~/new.bin');
    await sweepAndExpectNothingStaged();
  });

  it(`F05 ${kind} mid-body of a part PUT: the PUT fails, the file in $HOME stays, a retried PUT and complete give the right SHA-256`, async () => {
    const before = await homeListing();
    const oldSha = await homeSha('keep.bin');
    const data = randomBytes(12 * MiB);
    const ticket = await presign('keep.bin', data.length);
    expect('parts' in ticket && ticket.parts.length).toBe(3);
    if (!('parts' in ticket)) return;
    const parts = await putParts(ticket, data, 2);
    const second = ticket.parts[1];
    if (!second) throw new Error('no part 2');

    const outcome = await interruptedPut(second.url, partBytes(ticket, data, 2), kind);
    expect(outcome).toMatch(kind === 'blackhole' ? /^stalled$/ : /^(ECONNRESET|EPIPE)$/);
    await terminalEchoes();
    expect(await homeListing()).toBe(before);
    expect(await homeSha('keep.bin')).toBe(oldSha);

    proxy.restore();
    // The same presigned URL, as the page's retry of one part does.
    parts.push({ partNumber: 2, etag: await put(second.url, partBytes(ticket, data, 2)) });
    const done = await complete(ticket, parts);
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json<CompleteUploadResponse>()).toEqual({
      path: '~/keep.bin',
      size: data.length,
      sha256: sha256(data),
    });
    expect(await homeSha('keep.bin')).toBe(sha256(data));
    expect(await inContainer('ls -A ~')).not.toMatch(/\.cove-upload-|keep \(1\)/);
    await sweepAndExpectNothingStaged();
  });

  it(`F05 ${kind} after the PUTs: complete gets 503 within the timeout, nothing partial in $HOME, and the upload finishes after recovery`, async () => {
    const before = await homeListing();
    const oldSha = await homeSha('keep.bin');
    const data = randomBytes(12 * MiB);
    const ticket = await presign('keep.bin', data.length);
    const parts = await putParts(ticket, data);

    fault(kind);
    const completing = answer(complete(ticket, parts));
    const stillPending = await echoesWhile(completing);
    if (kind === 'blackhole') expect(stillPending).toBe(true);
    const failed = await completing;
    expectUnavailableSoon(failed);
    expect(await homeListing()).toBe(before);
    expect(await homeSha('keep.bin')).toBe(oldSha);

    proxy.restore();
    // S3 never answered, so nothing was consumed: the same upload completes. If Cove dropped it
    // (404), the page's Retry starts a new upload with fresh URLs, which must work too.
    const again = await complete(ticket, parts);
    const saved =
      again.statusCode === 404 ? await uploadAll('keep.bin', data) : again.json<CompleteUploadResponse>();
    expect([200, 404], again.body).toContain(again.statusCode);
    expect(saved).toEqual({ path: '~/keep.bin', size: data.length, sha256: sha256(data) });
    expect(await homeSha('keep.bin')).toBe(sha256(data));
    await sweepAndExpectNothingStaged();
  });

  it(`F05 ${kind} mid-fetch into the container: 503 within the timeout, no temp file, the old file intact, a new upload works`, async () => {
    const before = await homeListing();
    const oldSha = await homeSha('keep.bin');
    const data = randomBytes(48 * MiB);
    const ticket = await presign('keep.bin', data.length);
    const parts = await putParts(ticket, data);

    let settled = false;
    const completing = complete(ticket, parts).finally(() => (settled = true));
    await until('bytes of the upload in its temp file', async () => settled || (await growingTempFile()));
    expect(settled, 'the fetch ended before the fault could hit it').toBe(false);
    fault(kind);
    const failed = await answer(completing);
    expectUnavailableSoon(failed);
    await terminalEchoes();
    expect(await homeListing()).toBe(before);
    expect(await homeSha('keep.bin')).toBe(oldSha);

    proxy.restore();
    const saved = await uploadAll('keep.bin', data);
    expect(saved.sha256).toBe(sha256(data));
    expect(await homeSha('keep.bin')).toBe(sha256(data));
    expect(await inContainer('ls -A ~')).not.toMatch(/\.cove-upload-/);
    await sweepAndExpectNothingStaged();
  }, 240_000);

  it(`F05 ${kind} before the download's staging PUT: 503 within the timeout; after recovery nothing staged and a retry works`, async () => {
    const before = await homeListing();
    const bigSha = await homeSha('big.bin');
    fault(kind);
    const downloading = answer(
      server.request(alice, 'POST', `/api/environments/${regionA}/downloads`, { path: '~/big.bin' }),
    );
    const stillPending = await echoesWhile(downloading);
    if (kind === 'blackhole') expect(stillPending).toBe(true);
    const failed = await downloading;
    expectUnavailableSoon(failed);
    expect(await homeListing()).toBe(before);

    proxy.restore();
    await sweepAndExpectNothingStaged();
    const retried = await downloadBytes('~/big.bin');
    expect(retried.file).toMatchObject({ name: 'big.bin', size: 48 * MiB });
    expect(retried.sha).toBe(bigSha);
    await sweepAndExpectNothingStaged();
  });

  it(`F05 ${kind} mid-way through the download's staging PUT: 503 within the timeout; after recovery and a sweep nothing staged, a retry works`, async () => {
    const before = await homeListing();
    const bigSha = await homeSha('big.bin');
    expect(await staged()).toEqual([]);

    let settled = false;
    const downloading = server
      .request(alice, 'POST', `/api/environments/${regionA}/downloads`, { path: '~/big.bin' })
      .finally(() => (settled = true));
    await until('the staging object to grow in S3', async () => settled || (await growingStagedObject()));
    expect(settled, 'the staging PUT ended before the fault could hit it').toBe(false);
    fault(kind);
    const failed = await answer(downloading);
    expectUnavailableSoon(failed);
    await terminalEchoes();
    expect(await homeListing()).toBe(before);
    expect(await homeSha('big.bin')).toBe(bigSha);

    proxy.restore();
    await sweepAndExpectNothingStaged();
    const retried = await downloadBytes('~/big.bin');
    expect(retried.sha).toBe(bigSha);
    await sweepAndExpectNothingStaged();
  }, 240_000);
});
