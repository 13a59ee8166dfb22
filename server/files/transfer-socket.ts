/**
 * A one-time unix socket for one file transfer's bytes, in the environment's own directory (the
 * host side of /run/cove, which only that container mounts, read-only). An exec's stdin and stdout
 * moved 15-80 MB/s here; a unix socket moves 140-200 MB/s. The exec still starts the helper and
 * carries the token (its stdin) and the result (its stdout).
 *
 * Exactly one connection is taken: the first that sends the token (64 hex characters and a
 * newline) within `tokenTimeoutMs`. A wrong token, or none, closes that connection; any other
 * connection is closed once one was taken. The socket file is removed as soon as the connection is
 * taken, and always by `close()`, which the owner calls on every path.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

const tokenLineBytes = 65;
/** Connections waiting to show their token; more are closed at once. */
const maxWaiting = 4;
/** A connection that has not shown a token by then is closed (the helper sends it at once). */
const tokenTimeoutMs = 5000;

export interface TransferSocketOptions {
  /** The environment's directory on the host (`CredentialDelivery.directoryOf`). */
  readonly hostDir: string;
  /** The same directory inside the container (`/run/cove`). */
  readonly containerDir: string;
  /** How long the helper has to connect and show the token. */
  readonly acceptTimeoutMs: number;
}

export class TransferSocketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransferSocketError';
  }
}

export class TransferSocket {
  /** The secret the helper sends first (it reads it from its stdin). */
  readonly token = randomBytes(32).toString('hex');
  readonly containerPath: string;
  /** Settles with the one connection that showed the token, or fails on timeout or close. */
  readonly connection: Promise<Socket>;
  private readonly hostPath: string;
  private readonly server: Server;
  private readonly waiting = new Set<Socket>();
  private accepted: Socket | undefined;
  private settle: { resolve: (socket: Socket) => void; reject: (error: Error) => void } | undefined;
  private readonly timer: NodeJS.Timeout;
  private unlinked: Promise<void> | undefined;

  private constructor(options: TransferSocketOptions) {
    // Short: a unix socket's path has at most 107 bytes, and the token guards it, not the name.
    const name = `xfer-${randomBytes(4).toString('hex')}`;
    this.hostPath = join(options.hostDir, name);
    this.containerPath = `${options.containerDir.replace(/\/$/, '')}/${name}`;
    this.connection = new Promise<Socket>((resolve, reject) => (this.settle = { resolve, reject }));
    // Nobody may be listening for it when an exec fails before connecting.
    this.connection.catch(() => undefined);
    this.server = createServer((socket) => this.screen(socket));
    this.timer = setTimeout(
      () => this.fail(new TransferSocketError('the helper did not connect in time')),
      options.acceptTimeoutMs,
    );
    this.timer.unref();
  }

  static async open(options: TransferSocketOptions): Promise<TransferSocket> {
    const socket = new TransferSocket(options);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.server.once('error', reject);
        socket.server.listen(socket.hostPath, () => {
          socket.server.off('error', reject);
          resolve();
        });
      });
      // The container user (1000, or 101000 under userns-remap) must be able to connect; the
      // token, not the mode, decides who gets in, and only this container sees the directory.
      await chmod(socket.hostPath, 0o666);
    } catch (error) {
      await socket.close();
      throw error;
    }
    return socket;
  }

  /** Stops listening, removes the file, and ends every connection (also the accepted one). */
  async close(): Promise<void> {
    this.fail(new TransferSocketError('the transfer socket was closed'));
    this.accepted?.destroy();
    await this.stopListening();
  }

  private screen(socket: Socket): void {
    if (this.accepted || !this.settle || this.waiting.size >= maxWaiting) {
      socket.destroy();
      return;
    }
    this.waiting.add(socket);
    let received = Buffer.alloc(0);
    const drop = () => {
      cleanup();
      socket.destroy();
    };
    const timer = setTimeout(drop, tokenTimeoutMs);
    // Paused-mode reads: once the listener is gone the stream is back as it was, so whoever takes
    // the connection reads it any way it likes (pipe, 'data', async iteration).
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null)
        received = Buffer.concat([received, chunk]);
      const newline = received.indexOf(0x0a);
      if (newline >= 0 && newline < tokenLineBytes - 1) return drop();
      if (received.length < tokenLineBytes) return;
      cleanup();
      const line = received.subarray(0, tokenLineBytes);
      const expected = Buffer.from(`${this.token}\n`);
      if (!timingSafeEqual(line, expected) || this.accepted || !this.settle) {
        socket.destroy();
        return;
      }
      const rest = received.subarray(tokenLineBytes);
      if (rest.length > 0) socket.unshift(rest);
      this.take(socket);
    };
    const cleanup = () => {
      clearTimeout(timer);
      this.waiting.delete(socket);
      socket.off('readable', onReadable);
      socket.off('end', drop);
      socket.off('error', drop);
    };
    socket.on('readable', onReadable);
    socket.once('end', drop);
    socket.once('error', drop);
  }

  private take(socket: Socket): void {
    this.accepted = socket;
    for (const other of this.waiting) other.destroy();
    this.waiting.clear();
    clearTimeout(this.timer);
    const settle = this.settle;
    this.settle = undefined;
    // One transfer, one connection: nothing else can connect from here on.
    void this.stopListening();
    settle?.resolve(socket);
  }

  private fail(error: Error): void {
    clearTimeout(this.timer);
    for (const other of this.waiting) other.destroy();
    this.waiting.clear();
    const settle = this.settle;
    this.settle = undefined;
    settle?.reject(error);
    if (!this.accepted) void this.stopListening();
  }

  private stopListening(): Promise<void> {
    this.unlinked ??= (async () => {
      // The listening handle closes at once; the callback waits for open connections too.
      const closed = this.server.listening
        ? new Promise<void>((resolve) => this.server.close(() => resolve()))
        : Promise.resolve();
      // net.Server removes its socket file itself; this covers a failed listen or chmod.
      await unlink(this.hostPath).catch(() => undefined);
      await closed;
    })();
    return this.unlinked;
  }
}
