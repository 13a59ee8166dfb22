/**
 * The cove-files helper inside the real sandbox image, run through the Docker driver's exec as the
 * environment user, with a host directory as the home: exact sizes, atomic writes, no symlinks,
 * streamed reads with backpressure, never as root.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../../sandbox/container-spec.js';
import { DockerSandboxDriver } from '../../../sandbox/docker-sandbox-driver.js';
import type { EnvironmentKey } from '../../../sandbox/sandbox-driver.js';
import { CoveFilesHelper, HelperError, helperCommand } from '../../../server/files/cove-files-helper.js';

const driver = new DockerSandboxDriver();
const key: EnvironmentKey = { ownerId: `test-files-${randomBytes(4).toString('hex')}`, region: 'eu-west-1' };
const helper = new CoveFilesHelper((k, cmd, options) => driver.exec(k, cmd, options));
let home = '';

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

async function helperError(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HelperError);
  return (error as HelperError).code;
}

async function tempFiles(): Promise<string[]> {
  return (await readdir(home)).filter((n) => n.startsWith('.cove-upload-'));
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'cove-files-home-'));
  await chown(home, 1000, 1000);
  await driver.ensure({
    ...key,
    image: 'cove/sandbox:latest',
    limits: { ...DEFAULT_LIMITS, memoryBytes: 256 * 1024 ** 2 },
    homeHostPath: home,
  });
}, 60_000);

afterAll(async () => {
  await driver.remove(key).catch(() => undefined);
  if (home) await rm(home, { recursive: true, force: true });
}, 60_000);

describe('cove-files write', () => {
  it('writes exactly the declared bytes atomically and reports the SHA-256', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const written = await helper.write(key, '~', 'data.bin', data.length, streamOf(data), {
      replace: false,
      timeoutMs: 60_000,
    });
    expect(written).toEqual({
      path: '~/data.bin',
      name: 'data.bin',
      size: data.length,
      sha256: sha256(data),
    });
    expect((await readFile(join(home, 'data.bin'))).equals(data)).toBe(true);
    expect(await tempFiles()).toEqual([]);
  });

  it('refuses fewer bytes than declared and leaves no temp file', async () => {
    const code = await helperError(
      helper.write(key, '~', 'short.bin', 1000, streamOf(randomBytes(999)), {
        replace: false,
        timeoutMs: 30_000,
      }),
    );
    expect(code).toBe('size-mismatch');
    expect((await readdir(home)).filter((n) => n.startsWith('short'))).toEqual([]);
    expect(await tempFiles()).toEqual([]);
  });

  it('refuses more bytes than declared and keeps the existing file, even with replace', async () => {
    await writeFile(join(home, 'keep.txt'), 'original');
    await chown(join(home, 'keep.txt'), 1000, 1000);
    const code = await helperError(
      helper.write(key, '~', 'keep.txt', 10, streamOf(randomBytes(5 * 1024 * 1024)), {
        replace: true,
        timeoutMs: 30_000,
      }),
    );
    expect(code).toBe('size-mismatch');
    expect(await readFile(join(home, 'keep.txt'), 'utf8')).toBe('original');
    expect(await tempFiles()).toEqual([]);
  });

  it('never writes through a symlinked folder, at any depth', async () => {
    await driver.exec(key, ['/bin/sh', '-c', 'mkdir -p ~/real && ln -sfn / ~/dl && ln -sfn /tmp ~/real/t']);
    for (const dir of ['~/dl', '~/dl/tmp', '~/real/t']) {
      const code = await helperError(
        helper.write(key, dir, 'x', 1, streamOf(Buffer.from('x')), { replace: false, timeoutMs: 30_000 }),
      );
      expect(code, dir).toBe('symlink');
    }
    const listing = await driver.exec(key, ['/bin/sh', '-c', 'ls -A /tmp']);
    expect(listing.stdout.toString()).not.toContain('x');
  });

  it('refuses bad names itself, whatever the server checked', async () => {
    for (const name of ['../x', '..', 'a\nb', 'x\u001b[2J', 'é'.repeat(150)]) {
      const code = await helperError(
        helper.write(key, '~', name, 1, streamOf(Buffer.from('x')), { replace: false, timeoutMs: 30_000 }),
      );
      expect(code, name).toBe('invalid-name');
    }
  });

  it('will not run as root', async () => {
    const result = await driver.exec(key, [helperCommand, 'check-dir', '~'], { user: '0:0' });
    expect(result.exitCode).toBe(9);
    expect(JSON.parse(result.stderr.toString())).toMatchObject({ error: 'permission' });
  });
});

describe('cove-files read', () => {
  it('streams a file out through exec with backpressure, byte for byte', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    await writeFile(join(home, 'out.bin'), data);
    await chown(join(home, 'out.bin'), 1000, 1000);
    const chunks: Buffer[] = [];
    let maxBuffered = 0;
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        maxBuffered = Math.max(maxBuffered, slow.writableLength);
        setImmediate(callback);
      },
    });
    const summary = await helper.streamOut(key, 'read', '~/out.bin', slow, {
      maxBytes: 1024 ** 3,
      timeoutMs: 60_000,
    });
    expect(summary).toEqual({ size: data.length, sha256: sha256(data) });
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    // The driver paused the exec instead of piling the whole file into the writable.
    expect(maxBuffered).toBeLessThan(data.length / 2);
  });

  it('refuses a file over the limit before sending anything', async () => {
    const sink = new PassThrough();
    const received: Buffer[] = [];
    sink.on('data', (c: Buffer) => received.push(c));
    const code = await helperError(
      helper.streamOut(key, 'read', '~/out.bin', sink, { maxBytes: 1000, timeoutMs: 30_000 }),
    );
    expect(code).toBe('too-large');
    expect(Buffer.concat(received).length).toBe(0);
  });
});

function streamOf(data: Buffer): PassThrough {
  const stream = new PassThrough();
  stream.end(data);
  return stream;
}
