/**
 * File transfer end to end on the real engine, real loop homes and real S3 (s3rver on loopback):
 * region A uses Cove's embedded S3 (the default), region B a configured bucket on a test s3rver
 * with a small home. Bytes go the way a browser sends them: fetch to the presigned URLs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { HomeTestServer, MiB, regionA, regionB, type HomeTestUser } from '../homes/home-test-server.js';
import { TestS3 } from '../../../helpers/s3.js';
import { TerminalTestClient } from '../../../unit/server/terminals/ws-test-client.js';
import type {
  CompleteUploadResponse,
  DownloadResponse,
  FileListing,
  MultipartUpload,
  SingleUpload,
  UploadResponse,
} from '../../../../server/protocol/files.js';
import type {} from '../../../../server/files/file-service.js';
import { formatDecimalBytes } from '../../../../server/protocol/api.js';
import { TransferSocket } from '../../../../server/files/transfer-socket.js';
import { SANDBOX_CREDENTIALS_DIR } from '../../../../sandbox/environment-image.js';

let server: HomeTestServer;
let s3: TestS3;
let alice: HomeTestUser;
let bob: HomeTestUser;

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const uploads = (region: string) => `/api/environments/${region}/uploads`;

async function inContainer(user: HomeTestUser, region: string, script: string): Promise<string> {
  const result = await server.app.environments
    .driver(region)
    .exec({ ownerId: user.id, region }, ['/bin/sh', '-c', script], { timeoutMs: 60_000 });
  return result.stdout.toString('utf8');
}

/** A terminal at its prompt (read from the rendered screen: the output may end in cursor moves). */
async function openShell(user: HomeTestUser, region: string): Promise<TerminalTestClient> {
  const created = await server.request(user, 'POST', `/api/environments/${region}/terminals`, {});
  expect(created.statusCode, created.body).toBe(201);
  const { terminalId } = created.json<{ terminalId: string }>();
  const client = await TerminalTestClient.connect(
    `ws://${server.base}/api/environments/${region}/terminals/${terminalId}/ws`,
    { origin: 'http://127.0.0.1:8080', cookie: user.cookie },
  );
  server.clients.push(client);
  await client.waitForScreen(/\$\s*$/, 30_000);
  return client;
}

async function requestUpload(
  user: HomeTestUser,
  region: string,
  body: unknown,
): Promise<{ status: number; json: UploadResponse & { code?: string; message?: string; reason?: string } }> {
  const response = await server.request(user, 'POST', uploads(region), body);
  return { status: response.statusCode, json: response.json() };
}

async function put(url: string, data: Uint8Array): Promise<Response> {
  return fetch(url, { method: 'PUT', body: new Blob([data as Uint8Array<ArrayBuffer>]) });
}

/** Uploads like the page does: parts in parallel, ETags collected, then complete. */
async function uploadBytes(
  user: HomeTestUser,
  region: string,
  dir: string,
  name: string,
  data: Uint8Array,
  onConflict?: 'replace' | 'keep-both',
) {
  const { status, json } = await requestUpload(user, region, {
    dir,
    files: [{ name, size: data.length }],
    ...(onConflict ? { onConflict } : {}),
  });
  expect(status, JSON.stringify(json)).toBe(200);
  const ticket = json.uploads[0] as SingleUpload | MultipartUpload;
  let body: unknown = {};
  if ('parts' in ticket) {
    const parts = await Promise.all(
      ticket.parts.map(async (part) => {
        const start = (part.partNumber - 1) * ticket.partSize;
        const response = await put(part.url, data.subarray(start, start + ticket.partSize));
        expect(response.status).toBe(200);
        return { partNumber: part.partNumber, etag: response.headers.get('etag') ?? '' };
      }),
    );
    body = { parts };
  } else {
    expect((await put(ticket.url, data)).status).toBe(200);
  }
  return server.request(user, 'POST', `${uploads(region)}/${ticket.id}/complete`, body);
}

async function download(user: HomeTestUser, region: string, path: string) {
  const response = await server.request(user, 'POST', `/api/environments/${region}/downloads`, { path });
  expect(response.statusCode, response.body).toBe(200);
  const file = response.json<DownloadResponse>();
  const got = await fetch(file.url);
  expect(got.status).toBe(200);
  return { file, bytes: new Uint8Array(await got.arrayBuffer()), headers: got.headers };
}

/** Every staged object of one upload: its parts, `staging/<user>/<upload>/part-00001`, ... */
const stagedOf = async (user: HomeTestUser, id: string): Promise<string[]> =>
  (await embeddedKeys()).filter((k) => k.startsWith(`staging/${user.id}/${id}/`));

async function embeddedKeys(): Promise<string[]> {
  const staging = server.app.files.staging.get(regionA);
  if (!staging) throw new Error('no staging for region A');
  const page = await staging.client.send(
    new ListObjectsV2Command({ Bucket: staging.bucket, Prefix: staging.prefix }),
  );
  return (page.Contents ?? []).map((o) => o.Key ?? '');
}

beforeAll(async () => {
  s3 = await TestS3.start();
  // A configured bucket takes the server's default credential chain.
  Object.assign(process.env, TestS3.credentialsEnv());
  server = await HomeTestServer.start({
    homeSizeBytes: 512 * MiB,
    config: {
      regions: [
        { id: regionA, name: 'US East' },
        { id: regionB, name: 'Europe', homeSizeBytes: 96 * MiB, s3: s3.regionConfig() },
      ],
      files: { partSizeBytes: 8 * MiB, multipartThresholdBytes: 8 * MiB },
    },
  });
  await server.app.files.checked;
  alice = await server.user('alice');
  bob = await server.user('bob');
}, 120_000);

afterAll(async () => {
  await server?.destroy();
  await s3?.destroy();
}, 120_000);

describe('upload', () => {
  it('puts the file in $HOME with the same SHA-256, tells the open terminal, audits, and empties staging', async () => {
    const terminal = await openShell(alice, regionA);
    const data = randomBytes(300_000);
    const response = await uploadBytes(alice, regionA, '~', 'data.csv', data);
    expect(response.statusCode, response.body).toBe(200);
    const saved = response.json<CompleteUploadResponse>();
    expect(saved).toEqual({ path: '~/data.csv', size: data.length, sha256: sha256(data) });
    expect((await inContainer(alice, regionA, 'sha256sum ~/data.csv')).split(' ')[0]).toBe(sha256(data));
    expect(await inContainer(alice, regionA, 'stat -c %u ~/data.csv')).toBe('1000\n');
    await terminal.waitFor(
      () =>
        terminal.events.some(
          (e) =>
            e.type === 'notice' && e.kind === 'file-transfer' && e.message === 'uploaded ~/data.csv (300 KB)',
        ),
      'the upload notice',
    );
    const entries = await server.store.audit.list({ action: 'file.upload' });
    const entry = entries.find((e) => e.actorId === alice.id);
    expect(entry?.details).toMatchObject({
      region: regionA,
      path: '~/data.csv',
      size: data.length,
      direction: 'upload',
    });
    expect(await embeddedKeys()).toEqual([]);
  });

  it('keeps an existing file untouched and saves the new one as "name (1)" unless told to replace', async () => {
    const first = randomBytes(1000);
    const second = randomBytes(2000);
    expect((await uploadBytes(alice, regionA, '~', 'notes.txt', first)).statusCode).toBe(200);
    const again = await uploadBytes(alice, regionA, '~', 'notes.txt', second);
    expect(again.json<CompleteUploadResponse>().path).toBe('~/notes (1).txt');
    expect((await inContainer(alice, regionA, 'sha256sum ~/notes.txt')).split(' ')[0]).toBe(sha256(first));
    const replaced = await uploadBytes(alice, regionA, '~', 'notes.txt', second, 'replace');
    expect(replaced.json<CompleteUploadResponse>().path).toBe('~/notes.txt');
    expect((await inContainer(alice, regionA, 'sha256sum ~/notes.txt')).split(' ')[0]).toBe(sha256(second));
  });

  it('signs Content-Length into every presigned PUT, so S3 refuses another size', async () => {
    const { json } = await requestUpload(alice, regionA, { dir: '~', files: [{ name: 'x.bin', size: 10 }] });
    const ticket = json.uploads[0] as SingleUpload;
    expect(new URL(ticket.url).searchParams.get('X-Amz-SignedHeaders')).toContain('content-length');
    expect(new URL(ticket.url).searchParams.has('x-amz-checksum-crc32')).toBe(false);
    expect(Number(new URL(ticket.url).searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
    expect((await server.request(alice, 'DELETE', `${uploads(regionA)}/${ticket.id}`)).statusCode).toBe(204);
  });

  it('stages each part as its own object of its exact size, never a multipart upload to assemble', async () => {
    const data = randomBytes(20 * MiB);
    const { json } = await requestUpload(alice, regionA, {
      dir: '~',
      files: [{ name: 'staged.bin', size: data.length }],
    });
    const ticket = json.uploads[0] as MultipartUpload;
    const etags = await Promise.all(
      ticket.parts.map(async (part) => {
        const start = (part.partNumber - 1) * ticket.partSize;
        const response = await put(part.url, data.subarray(start, start + ticket.partSize));
        expect(response.status).toBe(200);
        return { partNumber: part.partNumber, etag: response.headers.get('etag') ?? '' };
      }),
    );
    const staging = server.app.files.staging.get(regionA);
    const listed = await staging?.client.send(
      new ListObjectsV2Command({ Bucket: staging.bucket, Prefix: `staging/${alice.id}/${ticket.id}/` }),
    );
    expect((listed?.Contents ?? []).map((o) => [o.Key, o.Size])).toEqual([
      [`staging/${alice.id}/${ticket.id}/part-00001`, 8 * MiB],
      [`staging/${alice.id}/${ticket.id}/part-00002`, 8 * MiB],
      [`staging/${alice.id}/${ticket.id}/part-00003`, 4 * MiB],
    ]);
    // A wrong ETag names a part that is not the one the page uploaded: refused, nothing saved.
    const wrong = etags.map((p) => (p.partNumber === 2 ? { ...p, etag: '"0123456789abcdef"' } : p));
    const refused = await server.request(alice, 'POST', `${uploads(regionA)}/${ticket.id}/complete`, {
      parts: wrong,
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json<{ code: string }>().code).toBe('COVE_ERR_FILES_PARTS_INVALID');
    expect(await inContainer(alice, regionA, 'ls -A ~ | grep -c staged || true')).toBe('0\n');
    expect(await stagedOf(alice, ticket.id)).toEqual([]);
  });

  it('moves 200 MB in parts both ways, byte for byte', async () => {
    const data = randomBytes(200 * MiB);
    const digest = sha256(data);
    const response = await uploadBytes(alice, regionA, '~', 'big.bin', data);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json<CompleteUploadResponse>().sha256).toBe(digest);
    expect((await inContainer(alice, regionA, 'sha256sum ~/big.bin')).split(' ')[0]).toBe(digest);
    const back = await download(alice, regionA, '~/big.bin');
    expect(back.file.size).toBe(data.length);
    expect(sha256(back.bytes)).toBe(digest);
    await inContainer(alice, regionA, 'rm ~/big.bin');
  }, 240_000);
});

describe('download', () => {
  it('gives a presigned GET of the same bytes with a safe Content-Disposition for any name', async () => {
    const data = randomBytes(5000);
    const name = 'résumé "final";\\x.txt';
    expect((await uploadBytes(alice, regionA, '~', name, data)).statusCode).toBe(200);
    const got = await download(alice, regionA, `~/${name}`);
    expect(got.file).toMatchObject({ name, size: data.length });
    expect(Buffer.from(got.bytes).equals(data)).toBe(true);
    expect(got.headers.get('content-disposition')).toBe(
      `attachment; filename="resume _final_;_x.txt"; filename*=UTF-8''re%CC%81sume%CC%81%20%22final%22%3B%5Cx.txt`.replace(
        're%CC%81sume%CC%81',
        encodeURIComponent('résumé'),
      ),
    );
  });

  it('offers a folder as a .tar.gz and lists the home for the file browser', async () => {
    await inContainer(alice, regionA, 'mkdir -p ~/proj/src && echo hi > ~/proj/src/a.txt');
    const got = await download(alice, regionA, '~/proj');
    expect(got.file.name).toBe('proj.tar.gz');
    expect(got.bytes[0]).toBe(0x1f);
    expect(got.bytes[1]).toBe(0x8b);
    const listing = await server.request(
      alice,
      'GET',
      `/api/environments/${regionA}/files?dir=${encodeURIComponent('~')}`,
    );
    expect(listing.statusCode).toBe(200);
    const names = listing.json<FileListing>().entries.map((e) => `${e.type}:${e.name}`);
    expect(names).toContain('dir:proj');
    expect(names).toContain('file:data.csv');
  });

  it('refuses a path outside the home, a missing file, and a link leading out', async () => {
    await inContainer(alice, regionA, 'ln -sfn /etc ~/etc-link');
    for (const [path, code] of [
      ['/etc/passwd', 'COVE_ERR_FILES_INVALID_PATH'],
      ['~/../../etc/passwd', 'COVE_ERR_FILES_INVALID_PATH'],
      ['~/nope.txt', 'COVE_ERR_FILES_NOT_FOUND'],
      ['~/etc-link/passwd', 'COVE_ERR_FILES_SYMLINK'],
    ] as const) {
      const response = await server.request(alice, 'POST', `/api/environments/${regionA}/downloads`, {
        path,
      });
      expect(response.json<{ code: string }>().code, path).toBe(code);
    }
  });
});

describe('bad input gets a clear error, nothing lost', () => {
  it('H01 refuses traversal and odd names with a 400 and the reason, before anything moves', async () => {
    const before = await inContainer(alice, regionA, 'ls -A ~ | sort');
    const stagedBefore = await embeddedKeys();
    for (const name of [
      '../../etc/passwd',
      '/etc/shadow',
      'a\u0000b',
      'line\nbreak',
      'x\u001b]0;pwn\u0007',
      'é'.repeat(150),
      '.',
      '..',
    ]) {
      const { status, json } = await requestUpload(alice, regionA, { dir: '~', files: [{ name, size: 3 }] });
      expect(status, name).toBe(400);
      expect(json.code).toBe('COVE_ERR_FILES_INVALID_NAME');
      expect(json.reason).toMatch(/\S/);
    }
    const dir = await requestUpload(alice, regionA, { dir: '~/../..', files: [{ name: 'x', size: 3 }] });
    expect(dir.json.code).toBe('COVE_ERR_FILES_INVALID_PATH');
    expect(await inContainer(alice, regionA, 'ls -A ~ | sort')).toBe(before);
    expect(await embeddedKeys()).toEqual(stagedBefore);
  });

  it('H02 refuses a symlinked target folder (~/dl -> /, ~/dl -> /proc/self)', async () => {
    for (const target of ['/', '/proc/self']) {
      await inContainer(alice, regionA, `ln -sfn ${target} ~/dl`);
      const { status, json } = await requestUpload(alice, regionA, {
        dir: '~/dl',
        files: [{ name: 'x', size: 3 }],
      });
      expect(status, target).toBe(400);
      expect(json.code, target).toBe('COVE_ERR_FILES_SYMLINK');
      // Below the link too: the helper walks every component with O_NOFOLLOW.
      const below = await requestUpload(alice, regionA, { dir: '~/dl/cwd', files: [{ name: 'x', size: 3 }] });
      expect(below.status, target).toBe(400);
      expect(below.json.code, target).toBe('COVE_ERR_FILES_SYMLINK');
    }
    await inContainer(alice, regionA, 'rm ~/dl');
  });

  it('H01 a URL-encoded traversal or backslashes are a literal name inside $HOME, never a path', async () => {
    for (const name of ['..%2f..%2fx', '..\\..\\x']) {
      const data = randomBytes(64);
      const saved = await uploadBytes(alice, regionA, '~', name, data);
      expect(saved.statusCode, saved.body).toBe(200);
      expect(saved.json<CompleteUploadResponse>().path).toBe(`~/${name}`);
      const quoted = `'${name}'`;
      // From stdin: sha256sum escapes a name with a backslash in its output line.
      expect((await inContainer(alice, regionA, `sha256sum < ~/${quoted}`)).split(' ')[0]).toBe(sha256(data));
      const back = await download(alice, regionA, `~/${name}`);
      expect(back.file.name).toBe(name);
      expect(Buffer.from(back.bytes).equals(data)).toBe(true);
      await inContainer(alice, regionA, `rm ~/${quoted}`);
    }
    // Decoded, the name would have led to /x (two levels up from the home): nothing there.
    expect(await inContainer(alice, regionA, 'ls -A / /home | grep -cx x || true')).toBe('0\n');
  });

  it('H03 refuses a file over the per-file limit and more than the free space with 413, saying how much is free', async () => {
    const tooBig = await requestUpload(alice, regionA, {
      dir: '~',
      files: [{ name: 'x', size: 2 * 1024 ** 3 }],
    });
    expect(tooBig.status).toBe(413);
    expect(tooBig.json).toMatchObject({ code: 'COVE_ERR_FILES_TOO_LARGE', limitBytes: 1024 ** 3 });
    const stagedBefore = await s3.keys();
    const pendingBefore = server.app.files.transfer.pendingUploads();
    const full = await requestUpload(alice, regionB, { dir: '~', files: [{ name: 'x', size: 200 * MiB }] });
    expect(full.status).toBe(413);
    const refusal = full.json as unknown as {
      code: string;
      message: string;
      freeBytes: number;
      neededBytes: number;
    };
    expect(refusal.code).toBe('COVE_ERR_FILES_HOME_FULL');
    expect(refusal.neededBytes).toBe(200 * MiB);
    // The remaining bytes: what the home holds free (its 96 MiB minus what is in it), never more.
    expect(refusal.freeBytes).toBeGreaterThan(0);
    expect(refusal.freeBytes).toBeLessThan(96 * MiB);
    expect(refusal.message).toMatch(
      `Not enough space in your home: ${formatDecimalBytes(refusal.freeBytes, 10)} free, the files need 210 MB.`,
    );
    expect(await s3.keys()).toEqual(stagedBefore);
    expect(server.app.files.transfer.pendingUploads()).toBe(pendingBefore);
  });

  it('rejects more bytes than declared and keeps the existing file', async () => {
    const original = randomBytes(100);
    expect((await uploadBytes(alice, regionA, '~', 'keep.txt', original)).statusCode).toBe(200);
    const { json } = await requestUpload(alice, regionA, {
      dir: '~',
      files: [{ name: 'keep.txt', size: 10 * 1000 * 1000 }],
      onConflict: 'replace',
    });
    const ticket = json.uploads[0] as MultipartUpload;
    // s3rver does not check signatures; real S3 refuses this PUT already. Then HeadObject must.
    const parts = await Promise.all(
      ticket.parts.map(async (part) => {
        const response = await put(part.url, randomBytes(ticket.partSize + 1000));
        return { partNumber: part.partNumber, etag: response.headers.get('etag') ?? '' };
      }),
    );
    const done = await server.request(alice, 'POST', `${uploads(regionA)}/${ticket.id}/complete`, { parts });
    expect(done.statusCode).toBe(400);
    expect(done.json<{ code: string }>().code).toBe('COVE_ERR_FILES_SIZE_MISMATCH');
    expect((await inContainer(alice, regionA, 'sha256sum ~/keep.txt')).split(' ')[0]).toBe(sha256(original));
    expect(await stagedOf(alice, ticket.id)).toEqual([]);
  });

  it('a transfer stopped half way and cancelled leaves nothing in $HOME and nothing staged', async () => {
    const data = randomBytes(20 * MiB);
    const { json } = await requestUpload(alice, regionA, {
      dir: '~',
      files: [{ name: 'half.bin', size: data.length }],
    });
    const ticket = json.uploads[0] as MultipartUpload;
    expect(ticket.parts.length).toBe(3);
    expect((await put(ticket.parts[0]?.url ?? '', data.subarray(0, ticket.partSize))).status).toBe(200);
    expect(await stagedOf(alice, ticket.id)).toHaveLength(1);
    const cancelled = await server.request(alice, 'DELETE', `${uploads(regionA)}/${ticket.id}`);
    expect(cancelled.statusCode).toBe(204);
    expect(await inContainer(alice, regionA, 'ls -A ~ | grep -c half || true')).toBe('0\n');
    // The part that arrived was its own object; cancel deleted it.
    expect(await stagedOf(alice, ticket.id)).toEqual([]);
    // Gone for good: completing it now is a 404.
    const late = await server.request(alice, 'POST', `${uploads(regionA)}/${ticket.id}/complete`, {
      parts: [],
    });
    expect(late.statusCode).toBe(404);
  });

  it('an abandoned upload is swept once older than the retention', async () => {
    const { json } = await requestUpload(alice, regionA, {
      dir: '~',
      files: [{ name: 'gone.txt', size: 4 }],
    });
    const ticket = json.uploads[0] as SingleUpload;
    expect((await put(ticket.url, Buffer.from('abcd'))).status).toBe(200);
    expect(await stagedOf(alice, ticket.id)).toEqual([`staging/${alice.id}/${ticket.id}/part-00001`]);
    // As of a moment past the retention; the server's own clock (sessions, idle terminals) stays.
    const result = await server.app.files.sweep.run(
      server.now() + (server.config.files.stagingRetentionS + 60) * 1000,
    );
    expect(result.objectsDeleted).toBeGreaterThanOrEqual(1);
    expect(await embeddedKeys()).toEqual([]);
    expect(server.app.files.transfer.pendingUploads()).toBe(0);
  });

  it('home full mid-write: a clear error, the temp file removed, staging cleaned', async () => {
    const data = randomBytes(30 * MiB);
    const { status, json } = await requestUpload(alice, regionB, {
      dir: '~',
      files: [{ name: 'fill.bin', size: data.length }],
    });
    expect(status, JSON.stringify(json)).toBe(200);
    // Something else fills the home between the check and the write.
    await inContainer(alice, regionB, 'head -c 70M /dev/zero > ~/filler 2>/dev/null; true');
    const ticket = json.uploads[0] as MultipartUpload;
    const parts = await Promise.all(
      ticket.parts.map(async (part) => {
        const start = (part.partNumber - 1) * ticket.partSize;
        const response = await put(part.url, data.subarray(start, start + ticket.partSize));
        return { partNumber: part.partNumber, etag: response.headers.get('etag') ?? '' };
      }),
    );
    const done = await server.request(alice, 'POST', `${uploads(regionB)}/${ticket.id}/complete`, { parts });
    expect(done.statusCode).toBe(507);
    expect(done.json<{ code: string; message: string }>()).toMatchObject({
      code: 'COVE_ERR_FILES_HOME_FULL',
    });
    expect(await inContainer(alice, regionB, 'ls -A ~')).not.toMatch(/fill\.bin|\.cove-upload-/);
    expect(await s3.keys()).toEqual([]);
    await inContainer(alice, regionB, 'rm -f ~/filler');
  }, 120_000);

  it("another user's upload id answers exactly like an unknown one", async () => {
    const { json } = await requestUpload(alice, regionA, {
      dir: '~',
      files: [{ name: 'mine.txt', size: 4 }],
    });
    const id = (json.uploads[0] as SingleUpload).id;
    const foreign = await server.request(bob, 'POST', `${uploads(regionA)}/${id}/complete`, {});
    const unknown = await server.request(bob, 'POST', `${uploads(regionA)}/unknown-id/complete`, {});
    expect(foreign.statusCode).toBe(404);
    expect(foreign.body).toBe(unknown.body);
    const cancel = await server.request(bob, 'DELETE', `${uploads(regionA)}/${id}`);
    expect(cancel.statusCode).toBe(404);
    // Still alice's to cancel.
    expect((await server.request(alice, 'DELETE', `${uploads(regionA)}/${id}`)).statusCode).toBe(204);
  });

  it('checks the region, the session and the origin', async () => {
    const region = await requestUpload(alice, 'xx-fake-1', { dir: '~', files: [{ name: 'x', size: 1 }] });
    expect(region.status).toBe(400);
    const anonymous = await server.app.inject({
      method: 'POST',
      url: uploads(regionA),
      headers: { origin: 'http://127.0.0.1:8080', 'content-type': 'application/json' },
      payload: JSON.stringify({ dir: '~', files: [{ name: 'x', size: 1 }] }),
    });
    expect(anonymous.statusCode).toBe(401);
    const foreign = await server.app.inject({
      method: 'POST',
      url: uploads(regionA),
      headers: { origin: 'https://evil.example', cookie: alice.cookie, 'content-type': 'application/json' },
      payload: JSON.stringify({ dir: '~', files: [{ name: 'x', size: 1 }] }),
    });
    expect(foreign.statusCode).toBe(403);
  });

  it("a transfer socket is in its own environment's /run/cove only, and gone after the transfer", async () => {
    await server.app.environments.ensure({ id: alice.id, username: alice.username }, regionA);
    await server.app.environments.ensure({ id: bob.id, username: bob.username }, regionA);
    const aliceKey = { ownerId: alice.id, region: regionA };
    const socket = await TransferSocket.open({
      hostDir: server.app.credentialDelivery.directoryOf(aliceKey),
      containerDir: SANDBOX_CREDENTIALS_DIR,
      acceptTimeoutMs: 30_000,
    });
    const name = socket.containerPath.slice('/run/cove/'.length);
    try {
      expect(await inContainer(alice, regionA, 'ls -A /run/cove')).toContain(name);
      expect(await inContainer(bob, regionA, 'ls -A /run/cove')).not.toContain(name);
      // Bob cannot reach it by its path either: his /run/cove is another directory.
      expect(
        await inContainer(bob, regionA, `test -e ${socket.containerPath} && echo seen || echo absent`),
      ).toBe('absent\n');
    } finally {
      await socket.close();
    }
    expect(await inContainer(alice, regionA, 'ls -A /run/cove')).not.toContain('xfer-');
    // After real transfers too: no socket stays behind.
    expect((await uploadBytes(alice, regionA, '~', 'sock.txt', randomBytes(10))).statusCode).toBe(200);
    await download(alice, regionA, '~/sock.txt');
    expect(await inContainer(alice, regionA, 'ls -A /run/cove')).not.toContain('xfer-');
  });

  it('S3 down: 503 "file transfer unavailable" while the terminal keeps working', async () => {
    const terminal = await openShell(alice, regionB);
    await s3.stop();
    try {
      const { status, json } = await requestUpload(alice, regionB, {
        dir: '~',
        files: [{ name: 'x', size: 1 }],
      });
      expect(status).toBe(503);
      expect(json.code).toBe('COVE_ERR_FILES_UNAVAILABLE');
      expect(json.message).toBe(
        'File transfer is unavailable right now; your terminal is not affected. Try again in a minute.',
      );
      const down = await server.request(alice, 'POST', `/api/environments/${regionB}/downloads`, {
        path: '~',
      });
      expect(down.statusCode).toBe(503);
      terminal.send('echo still-$((40+2))\r');
      await terminal.waitForScreen('still-42', 10_000);
    } finally {
      await s3.restart();
    }
    const { status } = await requestUpload(alice, regionB, { dir: '~', files: [{ name: 'x', size: 1 }] });
    expect(status).toBe(200);
  }, 60_000);

  it('A06 on the real engine: once disabled, the open session gets no new upload or download URL and nothing more is staged', async () => {
    const carol = await server.user('carol');
    const data = new TextEncoder().encode('before the cut-off\n');
    expect((await uploadBytes(carol, regionA, '~', 'before.txt', data)).statusCode).toBe(200);
    expect((await download(carol, regionA, '~/before.txt')).bytes).toEqual(data);
    const stagedBefore = (await embeddedKeys()).filter((k) => k.startsWith(`staging/${carol.id}/`));

    await server.app.directory.updateUser(alice.id, carol.id, { disabled: true });
    const upload = await server.request(carol, 'POST', uploads(regionA), {
      dir: '~',
      files: [{ name: 'after.txt', size: 5 }],
    });
    expect(upload.statusCode).toBe(401);
    const down = await server.request(carol, 'POST', `/api/environments/${regionA}/downloads`, {
      path: '~/before.txt',
    });
    expect(down.statusCode).toBe(401);
    // Nothing new staged for her (what was staged before may be gone: a fetched download is deleted).
    const stagedAfter = (await embeddedKeys()).filter((k) => k.startsWith(`staging/${carol.id}/`));
    expect(stagedAfter.filter((k) => !stagedBefore.includes(k))).toEqual([]);
    // Her home is kept.
    expect(await inContainer(carol, regionA, 'cat ~/before.txt')).toBe('before the cut-off\n');
  }, 60_000);
});
