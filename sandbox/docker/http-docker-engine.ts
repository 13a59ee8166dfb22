/**
 * The few Docker Engine API calls the driver makes, over plain node:http(s). dockerode also
 * brings ssh2, gRPC and protobuf (for SSH transports and BuildKit sessions, which Cove never
 * uses); loading them costs the server about 25 MiB of resident memory for nothing. This client
 * has the same shape as the dockerode subset in `DockerEngine`, so tests can still hand the
 * driver a real dockerode instance.
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Duplex, Writable } from 'node:stream';

import type Docker from 'dockerode';

/** The part of dockerode the driver uses; `HttpDockerEngine` and dockerode both fit it. */
export interface DockerEngine {
  createContainer(options: Docker.ContainerCreateOptions): Promise<unknown>;
  getContainer(id: string): DockerEngineContainer;
  listContainers(options: {
    all: boolean;
    filters: Record<string, string[]>;
  }): Promise<Docker.ContainerInfo[]>;
  getEvents(options: Docker.GetEventsOptions): Promise<NodeJS.ReadableStream>;
  ping(): Promise<unknown>;
  /** Engine, containerd and runc versions (the version gate, engine-version.ts). */
  version(): Promise<Docker.DockerVersion>;
  createNetwork(options: Docker.NetworkCreateOptions): Promise<unknown>;
  getNetwork(id: string): { inspect(): Promise<Docker.NetworkInspectInfo> };
  readonly modem: { demuxStream(stream: NodeJS.ReadableStream, stdout: Writable, stderr: Writable): void };
}

export interface DockerEngineContainer {
  inspect(): Promise<Docker.ContainerInspectInfo>;
  start(): Promise<unknown>;
  unpause(): Promise<unknown>;
  stop(options: { t: number }): Promise<unknown>;
  remove(options: { force: boolean }): Promise<unknown>;
  exec(options: Docker.ExecCreateOptions): Promise<DockerEngineExec>;
}

export interface DockerEngineExec {
  start(options: { hijack: true; stdin: boolean; Tty?: boolean }): Promise<unknown>;
  resize(options: { h: number; w: number }): Promise<unknown>;
  inspect(): Promise<Docker.ExecInspectInfo>;
}

export interface HttpDockerEngineOptions {
  readonly socketPath?: string;
  readonly host?: string;
  readonly port?: number;
  readonly protocol?: 'http' | 'https';
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** Shaped like dockerode's errors (`statusCode`, the engine's message), which the driver reads. */
export class DockerEngineError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly json?: unknown,
  ) {
    super(message);
    this.name = 'DockerEngineError';
  }
}

interface Call {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly body?: unknown;
  /** Statuses that count as success (dockerode's: 304 and the like are errors). */
  readonly ok: readonly number[];
}

export class HttpDockerEngine implements DockerEngine {
  readonly #base: RequestOptions;
  readonly #request: typeof httpRequest;
  readonly modem = { demuxStream };

  constructor(options: HttpDockerEngineOptions = {}) {
    const https = options.protocol === 'https';
    this.#request = https ? httpsRequest : httpRequest;
    // Kept-alive connections save a connect per call; hijacked exec sockets leave the pool.
    const agent = https
      ? new HttpsAgent({
          keepAlive: true,
          ...(options.ca !== undefined && { ca: options.ca }),
          ...(options.cert !== undefined && { cert: options.cert }),
          ...(options.key !== undefined && { key: options.key }),
        })
      : new HttpAgent({ keepAlive: true });
    this.#base =
      options.host !== undefined
        ? { host: options.host, port: options.port ?? (https ? 2376 : 2375), agent }
        : { socketPath: options.socketPath ?? '/var/run/docker.sock', agent };
  }

  async createContainer(options: Docker.ContainerCreateOptions): Promise<unknown> {
    const { name, ...body } = options;
    return this.#json({ method: 'POST', path: '/containers/create', query: { name }, body, ok: [201] });
  }

  getContainer(id: string): DockerEngineContainer {
    const path = `/containers/${encodeURIComponent(id)}`;
    return {
      inspect: () => this.#json({ method: 'GET', path: `${path}/json`, ok: [200] }),
      start: () => this.#json({ method: 'POST', path: `${path}/start`, ok: [204] }),
      unpause: () => this.#json({ method: 'POST', path: `${path}/unpause`, ok: [204] }),
      stop: ({ t }) => this.#json({ method: 'POST', path: `${path}/stop`, query: { t }, ok: [204] }),
      remove: ({ force }) => this.#json({ method: 'DELETE', path, query: { force }, ok: [204] }),
      exec: async (options) => {
        const { Id } = await this.#json<{ Id: string }>({
          method: 'POST',
          path: `${path}/exec`,
          body: options,
          ok: [201],
        });
        return this.#exec(Id);
      },
    };
  }

  listContainers(options: {
    all: boolean;
    filters: Record<string, string[]>;
  }): Promise<Docker.ContainerInfo[]> {
    return this.#json({
      method: 'GET',
      path: '/containers/json',
      query: { all: options.all, filters: JSON.stringify(options.filters) },
      ok: [200],
    });
  }

  async getEvents(options: Docker.GetEventsOptions): Promise<NodeJS.ReadableStream> {
    const { response } = await this.#send(
      {
        method: 'GET',
        path: '/events',
        query: {
          since: options.since,
          until: options.until,
          filters: options.filters === undefined ? undefined : JSON.stringify(options.filters),
        },
        ok: [200],
      },
      options.abortSignal,
    );
    return response;
  }

  ping(): Promise<unknown> {
    return this.#text({ method: 'GET', path: '/_ping', ok: [200] });
  }

  version(): Promise<Docker.DockerVersion> {
    return this.#json({ method: 'GET', path: '/version', ok: [200] });
  }

  createNetwork(options: Docker.NetworkCreateOptions): Promise<unknown> {
    return this.#json({ method: 'POST', path: '/networks/create', body: options, ok: [201] });
  }

  getNetwork(id: string): { inspect(): Promise<Docker.NetworkInspectInfo> } {
    return {
      inspect: () => this.#json({ method: 'GET', path: `/networks/${encodeURIComponent(id)}`, ok: [200] }),
    };
  }

  #exec(id: string): DockerEngineExec {
    const path = `/exec/${encodeURIComponent(id)}`;
    return {
      start: (options) => this.#hijack(`${path}/start`, { Detach: false, Tty: options.Tty ?? false }),
      resize: ({ h, w }) =>
        this.#json({ method: 'POST', path: `${path}/resize`, query: { h, w }, ok: [200, 201] }),
      inspect: () => this.#json({ method: 'GET', path: `${path}/json`, ok: [200] }),
    };
  }

  /** Starts an exec and hands back the raw connection (`Upgrade: tcp`, answered with 101). */
  #hijack(path: string, body: unknown): Promise<Duplex> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = this.#request({
        ...this.#base,
        method: 'POST',
        path,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(payload),
          Connection: 'Upgrade',
          Upgrade: 'tcp',
        },
      });
      req.once('upgrade', (_response, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.once('response', (response) => {
        void readAll(response).then((text) => reject(engineError(response.statusCode ?? 0, text)), reject);
      });
      req.once('error', reject);
      req.end(payload);
    });
  }

  async #json<T>(call: Call): Promise<T> {
    const text = await this.#text(call);
    return (text.length > 0 ? JSON.parse(text) : undefined) as T;
  }

  async #text(call: Call): Promise<string> {
    const { response } = await this.#send(call);
    return readAll(response);
  }

  /** Resolves once the status is known; a status outside `call.ok` rejects with the engine's words. */
  #send(call: Call, signal?: AbortSignal): Promise<{ response: IncomingMessage }> {
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
    return new Promise((resolve, reject) => {
      const req = this.#request({
        ...this.#base,
        method: call.method,
        path: call.path + queryString(call.query),
        headers:
          payload === undefined
            ? {}
            : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
        ...(signal && { signal }),
      });
      req.once('response', (response) => {
        const status = response.statusCode ?? 0;
        if (call.ok.includes(status)) {
          resolve({ response });
          return;
        }
        void readAll(response).then((text) => reject(engineError(status, text)), reject);
      });
      req.once('error', reject);
      req.end(payload);
    });
  }
}

function queryString(query: Call['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.once('error', reject);
  });
}

/** The engine answers errors as `{"message": ...}`; the message keeps it, as dockerode's does. */
function engineError(status: number, text: string): DockerEngineError {
  let json: unknown;
  let detail = text.trim();
  try {
    json = JSON.parse(text);
    const message = (json as { message?: unknown }).message;
    if (typeof message === 'string') detail = message;
  } catch {
    // Not JSON (a proxy's page, an empty 304): keep the text.
  }
  return new DockerEngineError(status, `(HTTP code ${status}) ${detail}`.trim(), json);
}

/**
 * Splits a non-TTY exec's stream into stdout and stderr: frames of an 8-byte header (stream
 * type, 3 zero bytes, big-endian length) and the payload.
 */
function demuxStream(stream: NodeJS.ReadableStream, stdout: Writable, stderr: Writable): void {
  let buffered: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 8) {
      const size = buffered.readUInt32BE(4);
      if (buffered.length < 8 + size) break;
      const payload = buffered.subarray(8, 8 + size);
      (buffered[0] === 2 ? stderr : stdout).write(payload);
      buffered = buffered.subarray(8 + size);
    }
  });
}
