/**
 * Runs the `cove-files` helper (docker/sandbox/rootfs/usr/local/bin/cove-files) in a user's
 * environment through the driver's exec, always as the environment user, and turns its one-line
 * JSON errors into coded errors. The server never resolves a path inside the container: it passes
 * the user's path to the helper, which walks it with directory descriptors and O_NOFOLLOW.
 *
 * A file's bytes go through a one-time unix socket (transfer-socket.ts), not the exec's stdin or
 * stdout: those moved 15-80 MB/s, the socket 140-200 MB/s. The exec carries the socket's token
 * (stdin) and the helper's result (stdout).
 */
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { EnvironmentKey, ExecOptions, ExecResult } from '../../sandbox/index.js';
import type { CoveError } from '../errors.js';
import { errors } from '../errors.js';
import type { FileEntry, FileListing } from '../protocol/files.js';
import type { TransferSocket } from './transfer-socket.js';

export const helperCommand = '/usr/local/bin/cove-files';
/** The environment user; the helper refuses to run as root anyway. */
export const helperUser = '1000:1000';

export type Exec = (key: EnvironmentKey, cmd: readonly string[], options: ExecOptions) => Promise<ExecResult>;
/** Opens a transfer socket in the environment's /run/cove directory. */
export type OpenTransferSocket = (key: EnvironmentKey) => Promise<TransferSocket>;

export interface CheckedDir {
  readonly dir: string;
  readonly freeBytes: number;
}

export interface WrittenFile {
  readonly path: string;
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

export interface PathInfo {
  readonly path: string;
  readonly name: string;
  readonly type: 'file' | 'dir' | 'other';
  readonly size: number;
}

export interface StreamedOut {
  readonly size: number;
  readonly sha256: string;
}

interface HelperFailure {
  readonly error: string;
  readonly message: string;
}

/** The helper said no: `code` is its error code, `message` is for logs only. */
export class HelperError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HelperError';
  }
}

function lastJsonLine(buffer: Buffer): unknown {
  const lines = buffer.toString('utf8').trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i] ?? '') as unknown;
    } catch {
      // not JSON: keep looking
    }
  }
  return undefined;
}

function isFailure(value: unknown): value is HelperFailure {
  return typeof value === 'object' && value !== null && typeof (value as HelperFailure).error === 'string';
}

/** Maps a helper error to what the user reads; `shown` is the path as the user typed it. */
export function helperErrorToCove(error: HelperError, shown: string): CoveError {
  switch (error.code) {
    case 'invalid-name':
      return errors.filesInvalidName(error.message);
    case 'invalid-path':
    case 'outside-home':
      return error.message.includes('symbolic link')
        ? errors.filesSymlink(shown)
        : errors.filesInvalidPath(error.message);
    case 'not-found':
      return errors.filesNotFound(shown);
    case 'not-a-directory':
      return errors.filesNotAFolder(shown);
    case 'not-a-file':
      return errors.filesNotAFile(shown);
    case 'symlink':
      return errors.filesSymlink(shown);
    case 'permission':
      return errors.filesPermission(shown);
    case 'no-space':
      return errors.filesHomeFilledUp();
    case 'exists':
      return errors.filesExists(`${shown}: ${error.message}. Rename the file and try again.`);
    default:
      return errors.filesFailed(error);
  }
}

export class CoveFilesHelper {
  constructor(
    private readonly exec: Exec,
    private readonly openSocket: OpenTransferSocket,
  ) {}

  async checkDir(key: EnvironmentKey, dir: string): Promise<CheckedDir> {
    return this.json<CheckedDir>(key, ['check-dir', dir], { timeoutMs: 20_000 });
  }

  async stat(key: EnvironmentKey, path: string): Promise<PathInfo> {
    return this.json<PathInfo>(key, ['stat', path], { timeoutMs: 20_000 });
  }

  async list(key: EnvironmentKey, dir: string, maxEntries: number): Promise<FileListing> {
    const listing = await this.json<{ dir: string; entries: FileEntry[]; truncated: boolean }>(
      key,
      ['ls', dir, '--max-entries', String(maxEntries)],
      { timeoutMs: 20_000 },
    );
    return listing;
  }

  /**
   * Streams `input` (exactly `size` bytes) into `dir/name`; the helper writes atomically. When
   * `input` fails, the helper sees too few bytes and removes its temp file.
   */
  async write(
    key: EnvironmentKey,
    dir: string,
    name: string,
    size: number,
    input: NodeJS.ReadableStream,
    options: { replace: boolean; timeoutMs: number },
  ): Promise<WrittenFile> {
    // It may fail before the helper connects; the pipeline then reports it.
    input.on('error', () => undefined);
    return this.throughSocket<WrittenFile>(
      key,
      ['write', dir, name, String(size), options.replace ? '--replace' : '--keep-both'],
      options.timeoutMs,
      (connection) => pipeline(input, connection),
    );
  }

  /**
   * Streams a file (`read`) or a folder as .tar.gz (`tar`) into `output` and ends it; resolves once
   * `output` has taken every byte (its last writes may finish after the helper exits).
   * `exactBytes` (files only): exactly that many bytes, the length the caller promised S3; a file
   * that shrank since is a `size-mismatch` error, one that grew is cut there.
   */
  async streamOut(
    key: EnvironmentKey,
    kind: 'read' | 'tar',
    path: string,
    output: NodeJS.WritableStream,
    options: { maxBytes: number; timeoutMs: number; exactBytes?: number },
  ): Promise<StreamedOut> {
    const exact = options.exactBytes !== undefined ? ['--size', String(options.exactBytes)] : [];
    const summary = await this.throughSocket<StreamedOut>(
      key,
      [kind, path, '--max-bytes', String(options.maxBytes), ...exact],
      options.timeoutMs,
      (connection) => pipeline(connection, output),
    );
    if (typeof summary.size !== 'number') throw new HelperError('failed', 'the helper printed no summary');
    return summary;
  }

  /**
   * Runs a helper command whose bytes go through a fresh transfer socket; `move` pumps them once
   * the helper is connected. The socket is closed and its file removed on every path.
   */
  private async throughSocket<T>(
    key: EnvironmentKey,
    args: readonly string[],
    timeoutMs: number,
    move: (connection: Socket) => Promise<void>,
  ): Promise<T> {
    const socket = await this.openSocket(key);
    let moveFailed: unknown;
    const moving = socket.connection.then(move).catch((error: unknown) => {
      moveFailed = error;
    });
    try {
      const result = await this.json<T>(key, [...args, '--socket', socket.containerPath], {
        stdin: Buffer.from(`${socket.token}\n`),
        timeoutMs,
      });
      // The helper may exit while its last bytes are still on their way to `output`.
      await moving;
      if (moveFailed !== undefined) throw new HelperError('failed', `transfer socket: ${String(moveFailed)}`);
      return result;
    } finally {
      await socket.close();
      await moving;
    }
  }

  private async json<T>(key: EnvironmentKey, args: readonly string[], options: ExecOptions): Promise<T> {
    const result = await this.run(key, args, options);
    const value = lastJsonLine(result.stdout);
    if (typeof value !== 'object' || value === null)
      throw new HelperError('failed', `cove-files ${args[0] ?? ''} printed no JSON`);
    return value as T;
  }

  private async run(key: EnvironmentKey, args: readonly string[], options: ExecOptions): Promise<ExecResult> {
    const result = await this.exec(key, [helperCommand, ...args], { ...options, user: helperUser });
    if (result.exitCode === 0) return result;
    const failure = lastJsonLine(result.stderr);
    if (isFailure(failure)) throw new HelperError(failure.error, failure.message);
    // 126/127: no helper in this image (an old image still running).
    throw new HelperError(
      'failed',
      `cove-files ${args[0] ?? ''} exited with ${result.exitCode}: ${result.stderr.toString('utf8').slice(-300)}`,
    );
  }
}
