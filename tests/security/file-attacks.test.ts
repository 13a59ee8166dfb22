/**
 * SECURITY-TESTS H02 (a symlink swapped during the transfer) and H04 (the connection killed at
 * 50 %; 10 MB declared and 900 MB sent, then `complete`), on the real engine, a real loop home and the embedded S3: everything through the HTTP API
 * and the presigned URLs as a browser uses them, or through the `cove-files` command line inside
 * the container, so the tests hold whatever carries the bytes between S3 and the helper.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { readdir } from 'node:fs/promises';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HomeTestServer,
  MiB,
  regionA,
  type HomeTestUser,
} from '../integration/server/homes/home-test-server.js';
import type {
  CompleteUploadResponse,
  MultipartUpload,
  SingleUpload,
  UploadResponse,
} from '../../server/protocol/files.js';
import type {} from '../../server/files/file-service.js';
import { expectOverSendsRefused } from '../helpers/over-send.js';

let server: HomeTestServer;
let alice: HomeTestUser;

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const uploads = `/api/environments/${regionA}/uploads`;

async function inContainer(script: string, timeoutMs = 60_000): Promise<string> {
  const result = await server.app.environments
    .driver(regionA)
    .exec({ ownerId: alice.id, region: regionA }, ['/bin/sh', '-c', script], { timeoutMs });
  expect(result.exitCode, result.stderr.toString()).toBe(0);
  return result.stdout.toString('utf8');
}

async function askUpload(
  name: string,
  size: number,
  dir = '~',
  onConflict?: 'replace',
): Promise<{ status: number; json: UploadResponse & { code?: string } }> {
  const response = await server.request(alice, 'POST', uploads, {
    dir,
    files: [{ name, size }],
    ...(onConflict ? { onConflict } : {}),
  });
  return { status: response.statusCode, json: response.json() };
}

async function put(url: string, data: Uint8Array): Promise<{ status: number; etag: string }> {
  const response = await fetch(url, { method: 'PUT', body: new Blob([data as Uint8Array<ArrayBuffer>]) });
  await response.arrayBuffer();
  return { status: response.status, etag: response.headers.get('etag') ?? '' };
}

function complete(id: string, body: unknown = {}) {
  return server.request(alice, 'POST', `${uploads}/${id}/complete`, body);
}

/** `complete` refused a staged size other than the declared one: the code, both sizes, what to do. */
function expectSizeMismatch(
  done: Awaited<ReturnType<typeof complete>>,
  declaredBytes: number,
  actualBytes: number,
): void {
  expect(done.statusCode, done.body).toBe(400);
  expect(done.json()).toMatchObject({
    code: 'COVE_ERR_FILES_SIZE_MISMATCH',
    message: `The upload holds ${actualBytes} bytes but ${declaredBytes} were announced; nothing was saved. Upload the file again.`,
    declaredBytes,
    actualBytes,
  });
}

/**
 * A PUT that announces every byte (the signed Content-Length) and sends only `fraction` of them,
 * then kills the connection: `end` closes it (FIN) like a crashed client, `reset` sends a RST like
 * a network cut. Resolves once the socket is gone, with the bytes the kernel took.
 */
async function cutPut(
  url: string,
  data: Uint8Array,
  fraction: number,
  how: 'end' | 'reset',
): Promise<number> {
  const sent = Math.floor(data.length * fraction);
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, {
      method: 'PUT',
      headers: { 'content-length': String(data.length) },
    });
    request.on('response', (response) => {
      response.resume();
      reject(new Error(`S3 answered ${response.statusCode} to a PUT that was cut short`));
    });
    // The socket dies under the request: that error is the point.
    request.on('error', () => undefined);
    request.on('close', () => resolve(sent));
    request.flushHeaders();
    request.write(data.subarray(0, sent), () => {
      const socket = request.socket;
      if (!socket) return reject(new Error('no socket'));
      if (how === 'reset') socket.resetAndDestroy();
      else request.destroy();
    });
  });
}

/** The staging object a presigned URL writes (path-style: /bucket/key). */
function objectOf(url: string): { bucket: string; key: string } {
  const [bucket = '', ...key] = new URL(url).pathname.slice(1).split('/');
  return { bucket, key: key.map(decodeURIComponent).join('/') };
}

function staging() {
  const bucket = server.app.files.staging.get(regionA);
  if (!bucket) throw new Error('no staging bucket in region A');
  return bucket;
}

/** The size of the staging object a presigned URL writes, or undefined when S3 holds none. */
async function stagedSize(url: string): Promise<number | undefined> {
  const { bucket, key } = objectOf(url);
  try {
    const head = await staging().client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.ContentLength ?? 0;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return undefined;
    throw error;
  }
}

/** Every staging key of this user's upload `id`, whatever layout its parts have. */
async function stagedFor(id: string): Promise<string[]> {
  const { client, bucket, prefix } = staging();
  const page = await client.send(
    new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}${alice.id}/${id}` }),
  );
  return (page.Contents ?? []).map((o) => o.Key ?? '');
}

async function multipartLeftovers(): Promise<string[]> {
  const dir = `${server.app.files.embedded?.directory ?? ''}/cove-staging/._S3rver_uploads`;
  return readdir(dir).catch(() => []);
}

const fileSha = async (path: string): Promise<string> =>
  (await inContainer(`sha256sum < ${path}`)).split(' ')[0] ?? '';

beforeAll(async () => {
  server = await HomeTestServer.start({
    homeSizeBytes: 256 * MiB,
    config: {
      // 5 MiB parts; the threshold makes the 10 MB (decimal) over-send case a single PUT, as with
      // the default 16 MiB threshold, and 10 MiB and more multipart.
      files: { partSizeBytes: 5 * MiB, multipartThresholdBytes: 10_000_000 },
      sandbox: { graceS: 60, memoryBytes: 256 * MiB },
    },
  });
  await server.app.files.checked;
  alice = await server.user('attacker');
  await server.app.environments.ensure({ id: alice.id, username: alice.username }, regionA);
}, 120_000);

afterAll(async () => {
  await server?.destroy();
}, 120_000);

describe('H04 the connection killed half way through a presigned PUT', () => {
  const old = randomBytes(4096);

  beforeAll(async () => {
    const { json } = await askUpload('keep.bin', old.length);
    const ticket = json.uploads[0] as SingleUpload;
    expect((await put(ticket.url, old)).status).toBe(200);
    const done = await complete(ticket.id);
    expect(done.statusCode, done.body).toBe(200);
  });

  for (const how of ['end', 'reset'] as const) {
    it(`H04 single PUT cut at 50 % (${how}): no object, complete is a 400 that writes nothing, the old file stays`, async () => {
      const data = randomBytes(4 * MiB);
      const { status, json } = await askUpload('keep.bin', data.length, '~', 'replace');
      expect(status).toBe(200);
      const ticket = json.uploads[0] as SingleUpload;
      expect('url' in ticket).toBe(true);
      const home = await inContainer('ls -A ~ | sort');

      expect(await cutPut(ticket.url, data, 0.5, how)).toBe(2 * MiB);
      // S3 stores a PUT only once all its signed bytes arrived.
      expect(await stagedSize(ticket.url)).toBeUndefined();
      expectSizeMismatch(await complete(ticket.id), data.length, 0);
      expect(await fileSha('~/keep.bin')).toBe(sha256(old));
      expect(await inContainer('ls -A ~ | sort')).toBe(home);
      expect(await stagedFor(ticket.id)).toEqual([]);
      expect((await complete(ticket.id)).statusCode).toBe(404);
    });
  }

  it('H04 a multipart part cut at 50 %: complete without it or with a made-up ETag is a 400; the old file stays', async () => {
    const data = randomBytes(12 * MiB);
    for (const how of ['end', 'reset'] as const) {
      for (const claim of ['missing part', 'made-up etag'] as const) {
        const { json } = await askUpload('keep.bin', data.length, '~', 'replace');
        const ticket = json.uploads[0] as MultipartUpload;
        expect(ticket.parts.map((p) => p.partNumber)).toEqual([1, 2, 3]);
        const slice = (n: number) => data.subarray((n - 1) * ticket.partSize, n * ticket.partSize);
        const etags = new Map<number, string>();
        for (const n of [1, 3]) {
          const sent = await put(ticket.parts[n - 1]?.url ?? '', slice(n));
          expect(sent.status).toBe(200);
          etags.set(n, sent.etag);
        }
        await cutPut(ticket.parts[1]?.url ?? '', slice(2), 0.5, how);
        expect(await stagedSize(ticket.parts[1]?.url ?? '')).toBeUndefined();
        // What a client that lost part 2 could claim: the parts it has, or part 2's real MD5.
        if (claim === 'made-up etag') etags.set(2, `"${createHash('md5').update(slice(2)).digest('hex')}"`);
        const parts = [...etags].map(([partNumber, etag]) => ({ partNumber, etag }));
        const done = await complete(ticket.id, { parts });
        expect(done.statusCode, `${how} ${claim}: ${done.body}`).toBe(400);
        // Without part 2: Cove's own part list check. With a made-up ETag: part 2 is not in S3, so
        // the staged bytes fall short of the announced size.
        expect(done.json<{ code: string }>().code).toBe(
          claim === 'missing part' ? 'COVE_ERR_FILES_PARTS_INVALID' : 'COVE_ERR_FILES_SIZE_MISMATCH',
        );
        expect(done.json<{ message: string }>().message).toMatch(/Upload the file again\.$/);
        expect(await fileSha('~/keep.bin')).toBe(sha256(old));
        expect(await inContainer('ls -A ~')).not.toMatch(/\.cove-upload-/);
        expect(await stagedFor(ticket.id)).toEqual([]);
        expect(await stagedSize(ticket.parts[0]?.url ?? '')).toBeUndefined();
        expect(await multipartLeftovers()).toEqual([]);
      }
    }
  });

  it('H04 cancel after a cut removes what was staged', async () => {
    const data = randomBytes(12 * MiB);
    const { json } = await askUpload('cancelled.bin', data.length);
    const ticket = json.uploads[0] as MultipartUpload;
    expect((await put(ticket.parts[0]?.url ?? '', data.subarray(0, ticket.partSize))).status).toBe(200);
    await cutPut(ticket.parts[1]?.url ?? '', data.subarray(ticket.partSize, 2 * ticket.partSize), 0.5, 'end');
    const single = await askUpload('cancelled-small.bin', MiB);
    const small = single.json.uploads[0] as SingleUpload;
    await cutPut(small.url, randomBytes(MiB), 0.5, 'reset');

    for (const id of [ticket.id, small.id])
      expect((await server.request(alice, 'DELETE', `${uploads}/${id}`)).statusCode).toBe(204);
    expect(await stagedFor(ticket.id)).toEqual([]);
    expect(await stagedFor(small.id)).toEqual([]);
    expect(await stagedSize(small.url)).toBeUndefined();
    expect(await multipartLeftovers()).toEqual([]);
    expect(await inContainer('ls -A ~')).not.toMatch(/cancelled|\.cove-upload-/);
  });

  it('H04 after a cut, the same PUT again and complete give the new file whole', async () => {
    const single = randomBytes(3 * MiB);
    const multi = randomBytes(11 * MiB);
    const { json } = await server
      .request(alice, 'POST', uploads, {
        dir: '~',
        files: [
          { name: 'keep.bin', size: single.length },
          { name: 'retried.bin', size: multi.length },
        ],
        onConflict: 'replace',
      })
      .then((r) => ({ json: r.json<UploadResponse>() }));
    const [one, two] = json.uploads as [SingleUpload, MultipartUpload];

    await cutPut(one.url, single, 0.5, 'reset');
    expect((await put(one.url, single)).status).toBe(200);
    const first = await complete(one.id);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json<CompleteUploadResponse>()).toEqual({
      path: '~/keep.bin',
      size: single.length,
      sha256: sha256(single),
    });
    expect(await fileSha('~/keep.bin')).toBe(sha256(single));

    const slice = (n: number) => multi.subarray((n - 1) * two.partSize, n * two.partSize);
    await cutPut(two.parts[1]?.url ?? '', slice(2), 0.5, 'end');
    const parts = [];
    for (const part of two.parts) {
      const sent = await put(part.url, slice(part.partNumber));
      expect(sent.status).toBe(200);
      parts.push({ partNumber: part.partNumber, etag: sent.etag });
    }
    const second = await complete(two.id, { parts });
    expect(second.statusCode, second.body).toBe(200);
    expect(second.json<CompleteUploadResponse>().sha256).toBe(sha256(multi));
    expect(await fileSha('~/retried.bin')).toBe(sha256(multi));
    expect(await stagedFor(one.id)).toEqual([]);
    expect(await stagedFor(two.id)).toEqual([]);
    expect(await multipartLeftovers()).toEqual([]);
  });
});

describe("H04 declare 10 MB, send 900 MB through Cove's API", () => {
  const sent = 900 * MiB;
  /** Socket buffers on loopback hold a few MB; anything near 900 MB means the body was read. */
  const fewBytes = 32 * MiB;
  const old = randomBytes(MiB);

  /** s3rver's temp files of PUTs in flight (`<object>.incoming-<random>`). */
  async function incomingFiles(): Promise<string[]> {
    const entries = await readdir(server.app.files.embedded?.directory ?? '', { recursive: true });
    return entries.filter((name) => name.includes('.incoming-'));
  }

  beforeAll(async () => {
    const { json } = await askUpload('big.bin', old.length);
    const ticket = json.uploads[0] as SingleUpload;
    expect((await put(ticket.url, old)).status).toBe(200);
    expect((await complete(ticket.id)).statusCode).toBe(200);
  });

  // 10 MB (decimal) is one PUT here as with the default threshold; 10 MiB is two 5 MiB parts.
  const variants = [
    { kind: 'single PUT', size: 10_000_000 },
    { kind: 'multipart part', size: 10 * MiB },
  ] as const;
  for (const { kind, size } of variants) {
    it(`H04 declares 10 MB, sends 900 MB to the presigned URL: S3 refuses early, complete is a clear 400, the old file is intact (${kind})`, async () => {
      expect(await fileSha('~/big.bin')).toBe(sha256(old));
      const { status, json } = await askUpload('big.bin', size, '~', 'replace');
      expect(status).toBe(200);
      const ticket = json.uploads[0] as SingleUpload | MultipartUpload;
      expect('url' in ticket).toBe(kind === 'single PUT');
      const url = 'url' in ticket ? ticket.url : (ticket.parts[0]?.url ?? '');
      const signedBytes = 'url' in ticket ? size : ticket.partSize;
      expect(new URL(url).searchParams.get('X-Amz-SignedHeaders')).toContain('content-length');
      const home = await inContainer('ls -A ~ | sort');

      const rssBefore = process.memoryUsage().rss;
      await expectOverSendsRefused(url, sent, fewBytes);
      // The embedded S3 runs in this process: a body read into memory would show here.
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * MiB);
      expect(await stagedSize(url)).toBeUndefined();
      await expect.poll(() => incomingFiles(), { timeout: 5000 }).toEqual([]);

      // A multipart client has part 2 right; the page sends no ETags when it lost one.
      let staged = 0;
      if (!('url' in ticket)) {
        const second = ticket.parts[1];
        expect(second?.partNumber).toBe(2);
        expect((await put(second?.url ?? '', randomBytes(size - signedBytes))).status).toBe(200);
        staged = size - signedBytes;
      }
      expectSizeMismatch(await complete(ticket.id), size, staged);
      expect(await fileSha('~/big.bin')).toBe(sha256(old));
      expect(await inContainer('ls -A ~ | sort')).toBe(home);
      expect(await inContainer('ls -A ~')).not.toMatch(/\.cove-upload-/);
      expect(await stagedFor(ticket.id)).toEqual([]);
      expect(await multipartLeftovers()).toEqual([]);
      expect((await complete(ticket.id)).statusCode).toBe(404);

      // The refusal was about the over-send only: the same size sent right is saved whole.
      const data = randomBytes(size);
      const again = (await askUpload('big.bin', size, '~', 'replace')).json.uploads[0] as
        SingleUpload | MultipartUpload;
      const parts: { partNumber: number; etag: string }[] = [];
      if ('url' in again) expect((await put(again.url, data)).status).toBe(200);
      else
        for (const part of again.parts) {
          const slice = data.subarray(
            (part.partNumber - 1) * again.partSize,
            part.partNumber * again.partSize,
          );
          const answer = await put(part.url, slice);
          expect(answer.status).toBe(200);
          parts.push({ partNumber: part.partNumber, etag: answer.etag });
        }
      const saved = await complete(again.id, 'url' in again ? {} : { parts });
      expect(saved.statusCode, saved.body).toBe(200);
      expect(saved.json<CompleteUploadResponse>()).toEqual({
        path: '~/big.bin',
        size,
        sha256: sha256(data),
      });
      expect(await fileSha('~/big.bin')).toBe(sha256(data));
      expect(await stagedFor(again.id)).toEqual([]);

      // Back to the old file for the next variant, through the API too.
      const restore = (await askUpload('big.bin', old.length, '~', 'replace')).json
        .uploads[0] as SingleUpload;
      expect((await put(restore.url, old)).status).toBe(200);
      expect((await complete(restore.id)).statusCode).toBe(200);
    }, 180_000);
  }
});

/**
 * Swaps `~/dl` (a real folder) and `~/dl.swap` (a symlink) with renameat2(RENAME_EXCHANGE) as fast
 * as it can, as the user: each name is always there, and the folder keeps its inode whichever name
 * it has. Stops at `~/race.stop` (or after 5 minutes), then writes how often it swapped.
 */
const swapLoop = `
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
# As fast as the CPU lets it, but after the helper runs it races (same cgroup, same CPU quota).
os.nice(19)
os.chdir(os.path.expanduser('~'))
swaps, end = 0, time.time() + 300
while not os.path.exists('race.stop') and time.time() < end:
    for _ in range(500):
        if libc.renameat2(-100, b'dl', -100, b'dl.swap', 2) != 0:
            raise SystemExit('renameat2: errno %d' % ctypes.get_errno())
        swaps += 1
with open('race.count', 'w') as f:
    f.write(str(swaps))
`;

/** Uploads per race (the case asks for at least 50). */
const uploadCount = 50;

const shellQuote = (text: string): string => `'${text.replaceAll("'", `'\\''`)}'`;

describe('H02 the target folder swapped with a symlink during the transfer', () => {
  for (const target of ['/tmp', '/proc/self/cwd']) {
    it(`H02 uploads into ~/dl while it flips to a link to ${target}: each lands in the real folder or is refused`, async () => {
      const inode = (
        await inContainer(
          `cd ~ && rm -rf dl dl.swap race.* && mkdir dl && ln -s ${target} dl.swap && stat -c %i dl`,
        )
      ).trim();
      const before = { tmp: await inContainer('ls -A /tmp'), root: await inContainer('ls -A /') };
      await inContainer(`nohup python3 -c ${shellQuote(swapLoop)} >/dev/null 2>&1 &`);
      const outcomes: string[] = [];
      const landed: string[] = [];
      try {
        // Each one presign (the helper's check-dir) + PUT + complete (the helper's write), 4 at a time.
        const next = Array.from({ length: uploadCount }, (_, i) => `up-${i}.txt`);
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            for (let name = next.shift(); name !== undefined; name = next.shift()) {
              const body = Buffer.from(`${name}\n`);
              const asked = await askUpload(name, body.length, '~/dl');
              if (asked.status !== 200) {
                outcomes.push(`presign ${asked.status} ${asked.json.code ?? ''}`);
                continue;
              }
              const ticket = asked.json.uploads[0] as SingleUpload;
              expect((await put(ticket.url, body)).status).toBe(200);
              const done = await complete(ticket.id);
              const code = done.statusCode === 200 ? '' : done.json<{ code: string }>().code;
              outcomes.push(`complete ${done.statusCode} ${code}`.trim());
              if (done.statusCode === 200) {
                expect(done.json<CompleteUploadResponse>().path).toBe(`~/dl/${name}`);
                landed.push(name);
              }
            }
          }),
        );
      } finally {
        await inContainer('touch ~/race.stop; while [ ! -e ~/race.count ]; do sleep 0.05; done');
      }
      const swaps = Number(await inContainer('cat ~/race.count'));
      expect(swaps).toBeGreaterThan(1000);

      expect(outcomes).toHaveLength(uploadCount);
      const tally: Record<string, number> = {};
      for (const outcome of outcomes) tally[outcome] = (tally[outcome] ?? 0) + 1;
      // The race really ran both ways: some writes got the folder, some met the link.
      expect(landed.length).toBeGreaterThan(0);
      expect(landed.length).toBeLessThan(outcomes.length);

      // Everything that landed is in the real folder (found by its inode, whatever its name now).
      const real = (await inContainer(`cd ~ && find . -maxdepth 1 -inum ${inode}`)).trim().replace('./', '');
      expect(['dl', 'dl.swap']).toContain(real);
      const inReal = (await inContainer(`ls -A ~/${real}`)).split('\n').filter(Boolean);
      expect(inReal.sort()).toEqual([...landed].sort());
      // Nothing through the link: not in /tmp, /, the home (the helper's cwd), anywhere in the home.
      expect(await inContainer('ls -A /tmp')).toBe(before.tmp);
      expect(await inContainer('ls -A /')).toBe(before.root);
      expect((await inContainer('ls -A ~')).split('\n').filter((n) => n.startsWith('up-'))).toEqual([]);
      expect(
        await inContainer(
          `find ~ /tmp -xdev \\( -name '.cove-upload-*' -o -name 'up-*' \\) -print | grep -v "^$HOME/${real}/" || true`,
        ),
      ).toBe('');
      // Last, after the safety checks: a folder that turned into a link between the helper's lstat
      // and its open is a symlink refusal too, and must say so (not "not a folder").
      const allowed = [
        'presign 400 COVE_ERR_FILES_SYMLINK',
        'complete 200',
        'complete 400 COVE_ERR_FILES_SYMLINK',
      ];
      expect(
        outcomes.filter((o) => !allowed.includes(o)),
        `${swaps} swaps; outcomes ${JSON.stringify(tally)}`,
      ).toEqual([]);
      await inContainer(`cd ~ && rm -rf dl dl.swap race.*`);
    }, 300_000);
  }
});
