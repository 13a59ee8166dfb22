/**
 * One HTTP server on one unix socket: the credentials endpoint of one environment. The socket is
 * the caller's identity (it is only mounted into that environment's container), so the handler
 * is bound to the environment when the server is made; the request adds a token. Requests are
 * small GETs; anything else is refused before a handler runs. Never logs headers or bodies.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, unlink } from 'node:fs/promises';

export interface SocketRequest {
  readonly method: string;
  readonly path: string;
  /** The Authorization header as sent (the SDKs send the bare token). */
  readonly authorization: string | undefined;
}

export interface SocketAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

export type SocketHandler = (request: SocketRequest) => Promise<SocketAnswer>;

/** A path shorter than this fits `sockaddr_un` on Linux (108 bytes with the terminator). */
export const MAX_SOCKET_PATH_BYTES = 107;

const requestTimeoutMs = 30_000;

export class CredentialSocketServer {
  private readonly server: Server;
  private closed = false;

  private constructor(
    readonly path: string,
    handler: SocketHandler,
    onError: (error: unknown) => void,
  ) {
    this.server = createServer((request, response) => {
      void serve(request, response, handler).catch((error: unknown) => {
        onError(error);
        if (!response.headersSent)
          send(response, 500, { code: 'COVE_ERR_INTERNAL', message: 'The credentials endpoint failed.' });
        else response.destroy();
      });
    });
    this.server.requestTimeout = requestTimeoutMs;
    this.server.headersTimeout = requestTimeoutMs;
    // Idle SDK connections are cheap, but a dead container's would otherwise linger.
    this.server.keepAliveTimeout = 5_000;
  }

  /**
   * Listens on `path` (a stale socket file from an earlier run is replaced) and makes the socket
   * connectable by any uid: the container user is 1000, or 101000 under userns-remap, and the
   * socket's directory is only mounted into the one container it serves.
   */
  static async listen(
    path: string,
    handler: SocketHandler,
    onError: (error: unknown) => void,
  ): Promise<CredentialSocketServer> {
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES)
      throw new Error(`credentials socket path is too long for a unix socket: ${path}`);
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    const instance = new CredentialSocketServer(path, handler, onError);
    await new Promise<void>((resolve, reject) => {
      instance.server.once('error', reject);
      instance.server.listen(path, () => {
        instance.server.off('error', reject);
        resolve();
      });
    });
    instance.server.on('error', onError);
    await chmod(path, 0o666);
    return instance;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await unlink(this.path).catch(() => undefined);
  }
}

async function serve(
  request: IncomingMessage,
  response: ServerResponse,
  handler: SocketHandler,
): Promise<void> {
  // The body is never read: the endpoint takes none, and a large one must not be buffered.
  request.resume();
  if (request.method !== 'GET') {
    send(response, 405, {
      code: 'COVE_ERR_CREDENTIALS_METHOD',
      message: 'The credentials endpoint only answers GET.',
    });
    return;
  }
  const header = request.headers.authorization;
  const answer = await handler({
    method: request.method,
    path: (request.url ?? '/').split('?')[0] ?? '/',
    authorization: typeof header === 'string' && header.length > 0 ? header : undefined,
  });
  send(response, answer.status, answer.body);
}

function send(response: ServerResponse, status: number, body: Readonly<Record<string, unknown>>): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  response.end(text);
}
