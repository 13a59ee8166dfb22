/**
 * A second dockerd of a test's own, next to the machine's main engine and never touching it: its
 * own socket, daemon.json (not the main engine's), data root, exec root, pid file, containerd
 * namespaces and bridge, with iptables off. The bridge is a real one of its own because
 * `--bridge none` makes dockerd delete the host's docker0 at start (it shares the host's network
 * namespace with the main engine), which breaks every container the main engine starts afterwards.
 * No packets use it: the host never connects to container addresses.
 *
 * `stop()` removes the engine's containers and custom networks, stops it (SIGTERM, then SIGKILL),
 * deletes the bridge, unmounts whatever the engine left mounted under its directories and removes
 * `dir`. It is idempotent; a failed start stops what it started before throwing.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mountedPaths } from '../../sandbox/homes/home-volumes.js';

const run = promisify(execFile);
const DOCKER = '/usr/bin/docker';
const DOCKERD = '/usr/sbin/dockerd';

export interface SecondDockerdOptions {
  /** Unique per run: names the containerd namespaces (`<name>`, `<name>-plugins`). */
  readonly name: string;
  /** The engine's own directory (socket, daemon.json, log, exec root, pid file); removed by `stop()`. */
  readonly dir: string;
  /**
   * Where images and containers live; `<dir>/data` unless given. A given data root (e.g. a loop
   * mount of the test's) is the caller's and lies outside `dir`: `stop()` unmounts only what the
   * engine mounted inside it and leaves it in place.
   */
  readonly dataRoot?: string;
  /** A bridge name of this run only (at most 15 characters); created here, deleted by `stop()`. */
  readonly bridge: string;
  /** The bridge's address in CIDR form, a subnet no other engine uses. */
  readonly bridgeAddress: string;
  /** More dockerd flags, e.g. `['--userns-remap', 'default']`. Never `--bridge none`. */
  readonly extraArgs?: readonly string[];
  /** How long to wait for the engine to answer `docker version`. */
  readonly startTimeoutMs?: number;
}

export interface SecondDockerd {
  /** The engine's unix socket path (for dockerode's `socketPath`). */
  readonly socketPath: string;
  /** `unix://<socketPath>`, for `docker -H`. */
  readonly host: string;
  /** Runs `/usr/bin/docker -H <host> ...args`; rejects on a non-zero exit (the error carries stderr). */
  cli(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** The last part of the engine's log, for failure messages. */
  logTail(chars?: number): string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

export async function startSecondDockerd(options: SecondDockerdOptions): Promise<SecondDockerd> {
  const { name, dir, bridge, bridgeAddress } = options;
  if (options.extraArgs?.some((arg) => arg === '-b' || arg.startsWith('--bridge')))
    throw new Error('second dockerd: the bridge is set by the helper (never --bridge none)');
  if (options.dataRoot?.startsWith(`${dir}/`))
    throw new Error('second dockerd: a data root of the caller lies outside dir (stop() removes dir)');
  const dataRoot = options.dataRoot ?? join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const socketPath = join(dir, 'docker.sock');
  const host = `unix://${socketPath}`;
  const logPath = join(dir, 'dockerd.log');
  const cli = (...args: string[]) => run(DOCKER, ['-H', host, ...args], { maxBuffer: 16 * 1024 * 1024 });
  const logTail = (chars = 2000) => {
    try {
      return readFileSync(logPath, 'utf8').slice(-chars);
    } catch {
      return '(no dockerd log)';
    }
  };

  let dockerd: ChildProcess | undefined;
  let bridgeAdded = false;
  let stopping: Promise<void> | undefined;
  let spawnError: Error | undefined;

  const stopOnce = async (): Promise<void> => {
    if (dockerd && dockerd.exitCode === null && dockerd.signalCode === null) {
      const ids = (await cli('ps', '-aq').catch(() => ({ stdout: '' }))).stdout
        .trim()
        .split('\n')
        .filter(Boolean);
      if (ids.length > 0) await cli('rm', '-f', ...ids).catch(() => undefined);
      // Custom networks' bridges would outlive the engine on the host.
      const networks = (
        await cli('network', 'ls', '-q', '--filter', 'type=custom').catch(() => ({ stdout: '' }))
      ).stdout
        .trim()
        .split('\n')
        .filter(Boolean);
      for (const network of networks) await cli('network', 'rm', network).catch(() => undefined);
      dockerd.kill('SIGTERM');
      if (!(await waitForExit(dockerd, 20_000))) {
        dockerd.kill('SIGKILL');
        await waitForExit(dockerd, 10_000);
      }
    }
    if (bridgeAdded) await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    // Whatever the engine left mounted (it unmounts on a clean stop), deepest first; a data root
    // the caller gave stays mounted: it is theirs.
    const engineMounts = async () =>
      [...(await mountedPaths())].filter(
        (path) => path.startsWith(`${dir}/`) || path.startsWith(`${dataRoot}/`),
      );
    for (const path of (await engineMounts()).sort((a, b) => b.length - a.length))
      await run('umount', [path]).catch(() => run('umount', ['-l', path]).catch(() => undefined));
    const left = await engineMounts();
    // Never delete through a mount: the files below it are not this engine's.
    if (left.length > 0) throw new Error(`second dockerd: still mounted: ${left.join(', ')}`);
    rmSync(dir, { recursive: true, force: true });
  };
  const stop = () => (stopping ??= stopOnce());

  try {
    mkdirSync(dir, { recursive: true });
    mkdirSync(dataRoot, { recursive: true });
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    bridgeAdded = true;
    await run('ip', ['addr', 'add', bridgeAddress, 'dev', bridge]);
    writeFileSync(join(dir, 'daemon.json'), '{}\n');
    const log = openSync(logPath, 'a');
    try {
      dockerd = spawn(
        DOCKERD,
        [
          '--config-file',
          join(dir, 'daemon.json'),
          '--host',
          host,
          '--data-root',
          dataRoot,
          '--exec-root',
          execRoot,
          '--pidfile',
          join(dir, 'docker.pid'),
          '--bridge',
          bridge,
          '--iptables=false',
          '--ip6tables=false',
          '--ip-masq=false',
          '--containerd-namespace',
          name,
          '--containerd-plugins-namespace',
          `${name}-plugins`,
          ...(options.extraArgs ?? []),
        ],
        { stdio: ['ignore', log, log] },
      );
      dockerd.on('error', (error) => (spawnError = error));
    } finally {
      closeSync(log); // the child holds its own copy
    }
    const child = dockerd;
    const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
    for (;;) {
      if (
        await cli('version').then(
          () => true,
          () => false,
        )
      )
        break;
      if (spawnError) throw new Error(`second dockerd ${name} did not spawn: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`second dockerd ${name} exited at start:\n${logTail()}`);
      if (Date.now() > deadline) throw new Error(`second dockerd ${name} did not answer:\n${logTail()}`);
      await sleep(250);
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return { socketPath, host, cli, logTail, stop };
}
