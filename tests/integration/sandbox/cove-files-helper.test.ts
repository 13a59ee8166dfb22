/**
 * The cove-files helper inside the real sandbox image, run through the Docker driver's exec as the
 * environment user, with a host directory as the home: exact sizes, atomic writes, no symlinks,
 * streamed reads with backpressure, never as root. The bytes go through a one-time unix socket in
 * the container's /run/cove (a host directory, as the credentials socket's): its token, one
 * connection only, and no socket file left behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, SANDBOX_CREDENTIALS_DIR } from '../../../sandbox/environment-image.js';
import { hostDirectory } from '../../../sandbox/host-directory.js';
import { DockerSandboxDriver } from '../../../sandbox/docker/docker-sandbox-driver.js';
import type { EnvironmentKey } from '../../../sandbox/sandbox-driver.js';
import { CoveFilesHelper, HelperError, helperCommand } from '../../../server/files/cove-files-helper.js';
import { TransferSocket } from '../../../server/files/transfer-socket.js';

const driver = new DockerSandboxDriver();
const key: EnvironmentKey = { ownerId: `test-files-${randomBytes(4).toString('hex')}`, region: 'eu-west-1' };
let home = '';
/** The host side of the container's /run/cove. */
let runDir = '';
const openSocket = (acceptTimeoutMs = 30_000) =>
  TransferSocket.open({ hostDir: runDir, containerDir: SANDBOX_CREDENTIALS_DIR, acceptTimeoutMs });
const helper = new CoveFilesHelper(
  (k, cmd, options) => driver.exec(k, cmd, options),
  () => openSocket(),
);

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

/** Transfer sockets still in /run/cove (there must be none between transfers). */
async function socketFiles(): Promise<string[]> {
  return (await readdir(runDir)).filter((n) => n.startsWith('xfer-'));
}

/** Runs python3 in the container as the environment user; stdout as text. */
async function python(script: string, ...args: string[]): Promise<string> {
  const result = await driver.exec(key, ['python3', '-c', script, ...args], { timeoutMs: 30_000 });
  expect(result.exitCode, result.stderr.toString()).toBe(0);
  return result.stdout.toString().trim();
}

/** Connects to `path`, sends `line`, reads to the end: prints `connected <bytes read>` or the error. */
const connectScript = `
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("refused", e.errno); sys.exit(0)
s.sendall(sys.argv[2].encode() + b"\\n")
n = 0
while True:
    try:
        b = s.recv(65536)
    except OSError:
        break
    if not b:
        break
    n += len(b)
print("connected", n)
`;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'cove-files-home-'));
  await chown(home, 1000, 1000);
  runDir = await mkdtemp(join(tmpdir(), 'cove-files-run-'));
  await chmod(runDir, 0o755);
  await driver.ensure({
    ...key,
    image: 'cove/sandbox:latest',
    limits: { ...DEFAULT_LIMITS, memoryBytes: 256 * 1024 ** 2 },
    home: hostDirectory(home),
    credentials: hostDirectory(runDir),
  });
}, 60_000);

afterAll(async () => {
  await driver.remove(key).catch(() => undefined);
  if (home) await rm(home, { recursive: true, force: true });
  if (runDir) await rm(runDir, { recursive: true, force: true });
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
    expect(await socketFiles()).toEqual([]);
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
    expect(await socketFiles()).toEqual([]);
  });

  it('a source that breaks off mid-stream leaves no temp file and no socket', async () => {
    const source = new PassThrough();
    source.write(randomBytes(2 * 1024 * 1024));
    setTimeout(() => source.destroy(new Error('S3 went away')), 300);
    const code = await helperError(
      helper.write(key, '~', 'cut.bin', 10 * 1024 * 1024, source, { replace: false, timeoutMs: 30_000 }),
    );
    expect(['size-mismatch', 'failed']).toContain(code);
    expect((await readdir(home)).filter((n) => n.startsWith('cut'))).toEqual([]);
    expect(await tempFiles()).toEqual([]);
    expect(await socketFiles()).toEqual([]);
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
    // The helper refused before connecting: the server removed the socket all the same.
    expect(await socketFiles()).toEqual([]);
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
  it('streams a file out through the socket with backpressure, byte for byte', async () => {
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
    // The socket was paused instead of piling the whole file into the writable.
    expect(maxBuffered).toBeLessThan(data.length / 2);
    expect(await socketFiles()).toEqual([]);
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

describe('the transfer socket', () => {
  it('refuses a wrong token, takes exactly one connection, and is gone once taken', async () => {
    const socket = await openSocket();
    try {
      const path = socket.containerPath;
      expect(path).toMatch(/^\/run\/cove\/xfer-[0-9a-f]{8}$/);
      // The container sees it, and nobody in there can make one (read-only, root-owned).
      expect(await python('import os; print(sorted(os.listdir("/run/cove")))')).toContain(path.slice(10));
      expect(await python('import os; print(os.access("/run/cove", os.W_OK))')).toBe('False');

      expect(await python(connectScript, path, 'f'.repeat(64))).toBe('connected 0');
      expect(await python(connectScript, path, 'not a token')).toBe('connected 0');
      expect(await socketFiles()).toHaveLength(1);

      const taken = socket.connection.then((connection) => {
        connection.end(Buffer.from('hello'));
        return connection;
      });
      expect(await python(connectScript, path, socket.token)).toBe('connected 5');
      await taken;
      // One transfer, one connection: the socket file is gone, a second connection fails.
      expect(await socketFiles()).toEqual([]);
      expect(await python(connectScript, path, socket.token)).toMatch(/^refused /);
    } finally {
      await socket.close();
    }
    expect(await socketFiles()).toEqual([]);
  });

  it('gives up when nobody connects in time, and removes the file', async () => {
    const socket = await openSocket(300);
    const outcome = await socket.connection.then(
      () => 'connected',
      (error: Error) => error.message,
    );
    expect(outcome).toMatch(/did not connect in time/);
    await socket.close();
    expect(await socketFiles()).toEqual([]);
  });

  it('the helper refuses a socket outside /run/cove and a missing token', async () => {
    for (const socketPath of ['/tmp/xfer-01234567', '/run/cove/creds.sock']) {
      const result = await driver.exec(key, [helperCommand, 'write', '~', 'y', '1', '--socket', socketPath], {
        user: '1000:1000',
        stdin: Buffer.from(`${'a'.repeat(64)}\n`),
        timeoutMs: 30_000,
      });
      expect(result.exitCode, socketPath).toBe(2);
    }
    const socket = await openSocket();
    try {
      const result = await driver.exec(
        key,
        [helperCommand, 'write', '~', 'y', '1', '--socket', socket.containerPath],
        { user: '1000:1000', stdin: Buffer.from('\n'), timeoutMs: 30_000 },
      );
      expect(result.exitCode).toBe(2);
      expect(JSON.parse(result.stderr.toString())).toMatchObject({ error: 'usage' });
    } finally {
      await socket.close();
    }
    expect((await readdir(home)).includes('y')).toBe(false);
  });
});

function streamOf(data: Buffer): PassThrough {
  const stream = new PassThrough();
  stream.end(data);
  return stream;
}
