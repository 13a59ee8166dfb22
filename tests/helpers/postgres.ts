/**
 * A throwaway PostgreSQL 15 for tests: its own cluster in a fresh temp directory, listening only
 * on a unix socket there (no TCP port), with settings that trade durability for speed (fsync
 * off). Run as the `postgres` OS user when the tests run as root (PostgreSQL refuses root), as the
 * current user otherwise. It never touches the Debian package's own cluster or its service.
 *
 * `dispose()` stops the server and removes the directory. A guard process, whose stdin is a pipe
 * from this process, does the same when this process ends in any way (crash, SIGKILL): the pipe
 * closes, and the guard stops the server and deletes the directory.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  /** The directory of the socket (and of the cluster). */
  readonly socketDir: string;
  /** URL of a database on this server, through the unix socket. */
  url(database: string): string;
  /** A new empty database; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown: connected clients are cut off, the data stays. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same socket and data. */
  start(): Promise<void>;
  /** Stops the server and removes its directory; idempotent. */
  dispose(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;

/** The command line, as the postgres user when we are root. */
function asPostgres(command: string, args: readonly string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, [...args]];
}

async function exec(command: string, args: readonly string[]): Promise<string> {
  const [file, argv] = asPostgres(command, args);
  try {
    return (await run(file, argv, { timeout: 60_000 })).stdout;
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr || stdout || String(error)}`);
  }
}

/** The URL of a database on the test server whose socket is in `socketDir`. */
export function postgresUrl(socketDir: string, database: string): string {
  return `postgres://postgres@/${encodeURIComponent(database)}?host=${encodeURIComponent(socketDir)}`;
}

/** A new empty database on the test server whose socket is in `socketDir`; returns its URL. */
export async function createDatabase(socketDir: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: postgresUrl(socketDir, 'postgres') });
  await client.connect();
  try {
    // FILE_COPY: a checkpoint instead of WAL-logging the template; cheap with fsync off.
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}" STRATEGY = FILE_COPY`);
  } finally {
    await client.end();
  }
  return postgresUrl(socketDir, name);
}

export async function startPostgres(): Promise<TestPostgres> {
  if (!existsSync(join(BIN, 'postgres')))
    throw new Error(
      `PostgreSQL 15 is not installed (no ${BIN}/postgres). Install it with "apt-get install postgresql" (npm test does this itself through scripts/cove.sh).`,
    );
  const dir = mkdtempSync(join(tmpdir(), 'cove-pg-'));
  const data = join(dir, 'data');
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const guard = startGuard(dir, data);
  const options = [
    "-c listen_addresses=''",
    `-c unix_socket_directories=${dir}`,
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=100',
    '-c shared_buffers=32MB',
  ].join(' ');
  const start = async () => {
    await exec(join(BIN, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      join(dir, 'server.log'),
      '-o',
      options,
      '-w',
      '-t',
      '60',
      'start',
    ]);
  };
  try {
    await exec(join(BIN, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
    ]);
    await start();
  } catch (error) {
    await stopGuard(guard);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const url = (database: string) => postgresUrl(dir, database);
  let disposed = false;
  return {
    socketDir: dir,
    url,
    createDatabase: (name) => createDatabase(dir, name),
    async stop() {
      await exec(join(BIN, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
    },
    start,
    async dispose() {
      if (disposed) return;
      disposed = true;
      await exec(join(BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await stopGuard(guard);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits for its stdin to close (this process ended or disposed), then stops the server at once
 * and removes the directory.
 */
function startGuard(dir: string, data: string): ChildProcess {
  const script = `cat >/dev/null; "$1/pg_ctl" -D "$2" -m immediate -w stop >/dev/null 2>&1; rm -rf "$3"`;
  const [file, argv] = asPostgres('sh', ['-c', script, 'cove-pg-guard', BIN, data, dir]);
  const guard = spawn(file, argv, { stdio: ['pipe', 'ignore', 'ignore'] });
  guard.unref();
  (guard.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return guard;
}

function stopGuard(guard: ChildProcess): Promise<void> {
  if (guard.exitCode !== null || guard.signalCode !== null) return Promise.resolve();
  // Held again while it finishes: unref'd, it would not keep this process waiting for it.
  guard.ref();
  return new Promise((resolve) => {
    guard.once('exit', () => resolve());
    guard.stdin?.end();
  });
}
