/**
 * The one-time transfer socket on the host side (the container side is in
 * tests/integration/sandbox/cove-files-helper.test.ts): the token first, one connection only, the
 * file gone once taken, on timeout and on close.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransferSocket } from '../../../../server/files/transfer-socket.js';

let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cove-xfer-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const open = (acceptTimeoutMs = 10_000) =>
  TransferSocket.open({ hostDir: dir, containerDir: '/run/cove', acceptTimeoutMs });

const hostPath = (socket: TransferSocket) => join(dir, socket.containerPath.slice('/run/cove/'.length));

/** Connects, sends `line`, and reports what the server sent back before closing (or the error). */
function client(path: string, line: string): Promise<{ received: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket: Socket = createConnection(path);
    const chunks: Buffer[] = [];
    socket.once('connect', () => socket.write(line));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? 'error' }));
    socket.once('close', () => resolve({ received: Buffer.concat(chunks).toString() }));
  });
}

describe('TransferSocket', () => {
  it('takes the first connection with the token; wrong tokens and later connections get nothing', async () => {
    const socket = await open();
    try {
      expect(socket.containerPath).toMatch(/^\/run\/cove\/xfer-[0-9a-f]{8}$/);
      expect(socket.token).toMatch(/^[0-9a-f]{64}$/);
      expect(await client(hostPath(socket), `${'0'.repeat(64)}\n`)).toEqual({ received: '' });
      expect(await client(hostPath(socket), 'short\n')).toEqual({ received: '' });

      void socket.connection.then((connection) => connection.end('the bytes'));
      expect(await client(hostPath(socket), `${socket.token}\n`)).toEqual({ received: 'the bytes' });
      expect(await readdir(dir)).toEqual([]);
      expect(await client(hostPath(socket), `${socket.token}\n`)).toEqual({ error: 'ENOENT' });
    } finally {
      await socket.close();
    }
  });

  it('passes on bytes sent right after the token', async () => {
    const socket = await open();
    try {
      const received = socket.connection.then(
        (connection) =>
          new Promise<string>((resolve) => {
            const chunks: Buffer[] = [];
            connection.on('data', (chunk: Buffer) => chunks.push(chunk));
            connection.once('end', () => resolve(Buffer.concat(chunks).toString()));
          }),
      );
      const sender = createConnection(hostPath(socket));
      sender.end(`${socket.token}\nfirst bytes`);
      expect(await received).toBe('first bytes');
    } finally {
      await socket.close();
    }
  });

  it('fails and removes the file when nobody connects in time, or when closed first', async () => {
    const late = await open(100);
    await expect(late.connection).rejects.toThrow(/did not connect in time/);
    await late.close();
    const closed = await open();
    expect(await readdir(dir)).toHaveLength(1);
    await closed.close();
    await expect(closed.connection).rejects.toThrow(/closed/);
    expect(await readdir(dir)).toEqual([]);
  });
});
