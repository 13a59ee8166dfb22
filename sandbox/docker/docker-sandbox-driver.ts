/**
 * SandboxDriver over the Docker Engine API (dockerode). One container per (owner, region), found
 * by its deterministic name and described by its labels, so every answer comes from the engine
 * and a restarted server sees exactly what is running.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { stat } from 'node:fs/promises';
import { PassThrough, type Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import type Docker from 'dockerode';

import {
  HttpDockerEngine,
  type DockerEngine,
  type DockerEngineContainer,
  type DockerEngineExec,
  type HttpDockerEngineOptions,
} from './http-docker-engine.js';

import { buildContainerSpec, SANDBOX_HOME, SANDBOX_USER, specHash } from './container-spec.js';
import { containerName, keyFromLabels, LABEL_SPEC_HASH, MANAGED_LABEL_FILTER } from '../names.js';
import { regionNetworkName, regionNetworkOptions, regionNetworkProblems } from './region-network.js';
import type {
  Disposable,
  EnvironmentEvent,
  EnvironmentKey,
  EnvironmentSpec,
  EnvironmentStatus,
  ExecOptions,
  ExecResult,
  SandboxDriver,
  Shell,
  ShellOptions,
} from '../sandbox-driver.js';
import { HolderOutputFilter } from '../holder/holder-output-filter.js';
import {
  HOLDER_LIST_COMMAND,
  HOLDER_NAME,
  holderCommand,
  holderExitCodeCommand,
  holderKillCommand,
  holderOutcome,
  parseHeldShells,
  parseHolderExitCode,
} from '../holder/holder-protocol.js';
import { SandboxError } from '../sandbox-error.js';

export interface SandboxLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * Where the engine is: the local socket, or a remote endpoint (TLS when ca/cert/key are given).
 * The engine's own options; unset port and protocol get their defaults in `toEngineOptions`.
 */
export type DockerConnectionOptions = HttpDockerEngineOptions;

export interface DockerSandboxDriverOptions {
  /**
   * A ready client (tests may pass dockerode); otherwise a light HttpDockerEngine is made from
   * `connection`.
   */
  readonly docker?: DockerEngine;
  readonly connection?: DockerConnectionOptions;
  readonly logger?: SandboxLogger;
  /**
   * Check that the home and credentials host paths exist before creating a container. Docker
   * silently creates or binds whatever is there; turn this off only when the engine is remote and
   * the paths live on its host, not ours.
   */
  readonly verifyHostPaths?: boolean;
  /** Seconds `stop` waits for a clean exit before SIGKILL. */
  readonly stopTimeoutS?: number;
}

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

const SHELL_MARKER_ENV = 'COVE_SHELL_ID';

const EXEC_MARKER_ENV = 'COVE_EXEC_ID';

/**
 * Ends a shell and everything in its session, run inside the container as the shell's user (no
 * capabilities: only the same uid may signal it). A TTY exec is a session leader, so the session
 * id equals the pid of the process carrying our marker. POSIX sh over /proc plus one grep, no
 * procps, and almost no forks: it must still work in an environment close to its pids limit.
 * HUP first (bash passes it to its jobs, editors save), CONT for stopped jobs, KILL after 2 s.
 */
const KILL_SESSION_SCRIPT = `
marker="$1"
sessions=""
for file in $(grep -lzxF "$marker" /proc/[0-9]*/environ 2>/dev/null); do
  dir=\${file%/environ}
  { read -r stat <"$dir/stat"; } 2>/dev/null || continue
  set -- \${stat##*) }
  [ "$4" = "\${dir#/proc/}" ] && sessions="$sessions $4"
done
[ -n "$sessions" ] || exit 0
members() {
  for dir in /proc/[0-9]*; do
    { read -r stat <"$dir/stat"; } 2>/dev/null || continue
    set -- \${stat##*) }
    for s in $sessions; do [ "$4" = "$s" ] && echo "\${dir#/proc/}"; done
  done
}
pids=$(members)
[ -n "$pids" ] && kill -HUP $pids 2>/dev/null
[ -n "$pids" ] && kill -CONT $pids 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
  pids=$(members)
  [ -z "$pids" ] && exit 0
  sleep 0.2
done
kill -KILL $pids 2>/dev/null
exit 0
`;

/** Kills every process started with the marker (a timed-out exec and its children). */
const KILL_MARKED_SCRIPT = `
for file in $(grep -lzxF "$1" /proc/[0-9]*/environ 2>/dev/null); do
  dir=\${file%/environ}
  kill -KILL "\${dir#/proc/}" 2>/dev/null
done
exit 0
`;

export class DockerSandboxDriver implements SandboxDriver {
  readonly #docker: DockerEngine;
  readonly #logger: SandboxLogger | undefined;
  readonly #verifyHostPaths: boolean;
  readonly #stopTimeoutS: number;
  /** Single flight per container name within this process; the engine arbitrates across processes. */
  readonly #ensuring = new Map<string, Promise<EnvironmentStatus>>();

  constructor(options: DockerSandboxDriverOptions = {}) {
    this.#docker = options.docker ?? new HttpDockerEngine(toEngineOptions(options.connection));
    this.#logger = options.logger;
    this.#verifyHostPaths = options.verifyHostPaths ?? true;
    this.#stopTimeoutS = options.stopTimeoutS ?? 3;
  }

  /** The underlying client, for callers that need an engine call this contract does not cover. */
  get docker(): DockerEngine {
    return this.#docker;
  }

  ensure(spec: EnvironmentSpec): Promise<EnvironmentStatus> {
    const name = containerName(spec);
    const pending = this.#ensuring.get(name);
    if (pending) {
      return pending;
    }
    const attempt = this.#ensure(spec, name).finally(() => this.#ensuring.delete(name));
    this.#ensuring.set(name, attempt);
    return attempt;
  }

  async #ensure(spec: EnvironmentSpec, name: string): Promise<EnvironmentStatus> {
    const options = buildContainerSpec(spec);
    const wantedHash = specHash(spec);
    // Loop until the engine's view settles: another process may be creating, removing or starting
    // the same name. The engine reserves a name before the container can be inspected, so a 409
    // on create can be followed by a 404 on inspect for a moment.
    const deadline = Date.now() + 20_000;
    for (let round = 0; Date.now() < deadline; round++) {
      let info = await this.#inspect(name);
      if (info && info.State.Status === 'removing') {
        await sleep(200);
        continue;
      }
      if (info && info.State.Status === 'dead') {
        // A container whose removal failed half-way can never start again.
        await this.#removeByName(name);
        continue;
      }
      if (info && !info.State.Running && info.Config.Labels[LABEL_SPEC_HASH] !== wantedHash) {
        this.#logger?.info('recreating stopped environment with a new spec', { name });
        await this.#removeByName(name);
        info = undefined;
      }
      let createdNow = false;
      if (!info) {
        await this.#verifyPaths(spec);
        await this.#ensureRegionNetwork(spec);
        try {
          await this.#docker.createContainer(options);
          createdNow = true;
          this.#logger?.info('environment created', { name });
        } catch (err) {
          if (statusCode(err) === 409) {
            await sleep(Math.min(25 * (round + 1), 250));
            continue; // someone else created it (or is removing it): look again
          }
          throw mapCreateError(err, spec);
        }
        info = await this.#inspect(name);
        if (!info) {
          continue; // removed by someone else right after we made it
        }
      }
      if (!info.State.Running || info.State.Paused) {
        try {
          await this.#start(name, info.State.Paused, spec);
        } catch (err) {
          // A container made just now that cannot start for lack of space would sit in `created`
          // holding a layer; the next ensure makes a fresh one.
          if (createdNow && isEngineDiskFull(err))
            await this.#removeByName(name).catch((removeErr: unknown) =>
              this.#logger?.warn('could not remove a container that failed to start', {
                name,
                error: String(removeErr),
              }),
            );
          throw err;
        }
        info = await this.#inspect(name);
        if (!info) {
          continue;
        }
      }
      return statusFromInspect(info, spec);
    }
    throw new SandboxError(
      'COVE_ERR_SANDBOX_BACKEND',
      `could not settle container ${name}: it kept changing under us`,
    );
  }

  async status(key: EnvironmentKey): Promise<EnvironmentStatus> {
    const info = await this.#inspect(containerName(key));
    return info
      ? statusFromInspect(info, key)
      : { ownerId: key.ownerId, region: key.region, state: 'missing' };
  }

  async stop(key: EnvironmentKey): Promise<void> {
    try {
      await this.#docker.getContainer(containerName(key)).stop({ t: this.#stopTimeoutS });
    } catch (err) {
      const code = statusCode(err);
      // 304: already stopped; 404: gone. Both mean what the caller wanted.
      if (code !== 304 && code !== 404) {
        throw backendError(err, 'stop');
      }
    }
  }

  async remove(key: EnvironmentKey): Promise<void> {
    await this.#removeByName(containerName(key));
  }

  async list(): Promise<EnvironmentStatus[]> {
    const containers = await this.#call('list', () =>
      this.#docker.listContainers({ all: true, filters: { label: [MANAGED_LABEL_FILTER] } }),
    );
    const statuses = await Promise.all(
      containers.map(async (summary) => {
        const key = keyFromLabels(summary.Labels);
        if (!key) {
          return undefined;
        }
        const info = await this.#inspect(summary.Id);
        return info ? statusFromInspect(info, key) : undefined;
      }),
    );
    return statuses.filter((s): s is EnvironmentStatus => s !== undefined);
  }

  async openShell(key: EnvironmentKey, options: ShellOptions): Promise<Shell> {
    // No inspect first: every round trip here delays the prompt, and exec create itself says
    // 404/409 when the container is missing or not running.
    const container = this.#docker.getContainer(containerName(key));
    const marker = randomUUID();
    const holder = options.holder;
    if (holder && !HOLDER_NAME.test(holder.name)) {
      throw new SandboxError(
        'COVE_ERR_SANDBOX_BACKEND',
        `invalid holder name ${JSON.stringify(holder.name)}`,
      );
    }
    const perShell = { ...options.env };
    const exec = await this.#execCall(key, () =>
      container.exec({
        Cmd: holder ? holderCommand(holder, options.cmd) : [...options.cmd],
        User: SANDBOX_USER,
        WorkingDir: options.workingDir ?? SANDBOX_HOME,
        // A held shell's variables travel by name to the holder, which gives them to that shell
        // alone; the marker is for unheld shells, whose kill finds them by it.
        Env: holder
          ? toEnvList({
              TERM: 'xterm-256color',
              ...perShell,
              COVE_TERMINAL_VARS: Object.keys(perShell).join(' '),
            })
          : toEnvList({ TERM: 'xterm-256color', ...perShell, [SHELL_MARKER_ENV]: marker }),
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: true,
      }),
    );
    const raw = (await this.#call('exec start', () =>
      exec.start({ hijack: true, stdin: true, Tty: true }),
    )) as Duplex;
    // Keystrokes are single bytes: over TCP (a remote engine) Nagle would hold them back.
    (raw as Partial<Socket>).setNoDelay?.(true);
    const filter = holder ? new HolderOutputFilter(raw) : undefined;
    const stream = filter ?? raw;

    const heldExitCode = async (name: string): Promise<number | null> => {
      try {
        const result = await this.#runCollect(container, holderExitCodeCommand(name), {
          user: SANDBOX_USER,
          timeoutMs: 10_000,
        });
        return parseHolderExitCode(result.stdout.toString('utf8'));
      } catch {
        return null;
      }
    };
    // Listen before any await: a command that ends at once must still resolve `exited`.
    let onDetached: () => void = () => {};
    const detached = holder ? new Promise<void>((resolve) => (onDetached = resolve)) : undefined;
    const exited = new Promise<number | null>((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        void waitForExecEnd(exec).then(
          (code) => {
            if (!holder) return resolve(code);
            const outcome = holderOutcome(code);
            if (outcome.kind === 'detached') onDetached();
            else if (outcome.kind === 'ask') void heldExitCode(holder.name).then(resolve);
            else resolve(outcome.code);
          },
          () => (holder ? onDetached() : resolve(null)),
        );
      };
      raw.once('end', finish);
      raw.once('close', finish);
      raw.once('error', finish);
    });

    const resize = async (cols: number, rows: number): Promise<void> => {
      try {
        await exec.resize({ h: rows, w: cols });
      } catch {
        // Only fails once the process has ended, when no one cares about its size any more.
      }
    };
    try {
      // Docker applies a TTY size only once the process runs. Engines since 18.06 hold a resize
      // until then, so it goes out at once; an older engine refuses it, and then we poll.
      await exec.resize({ h: options.rows, w: options.cols }).catch(async () => {
        await waitForExecStart(exec);
        await resize(options.cols, options.rows);
      });
    } catch (err) {
      stream.destroy();
      throw backendError(err, 'exec inspect');
    }

    const killHeld = async (name: string): Promise<void> => {
      try {
        await this.#runCollect(container, holderKillCommand(name), {
          user: SANDBOX_USER,
          timeoutMs: 10_000,
        });
      } catch (err) {
        if (!isNotRunning(err)) this.#logger?.warn('held shell kill failed', { error: String(err) });
      }
      stream.destroy();
    };

    const killSession = async (): Promise<void> => {
      try {
        await this.#runCollect(
          container,
          ['/bin/sh', '-c', KILL_SESSION_SCRIPT, 'cove-kill', `${SHELL_MARKER_ENV}=${marker}`],
          {
            user: SANDBOX_USER,
            timeoutMs: 10_000,
          },
        );
      } catch (err) {
        // A stopped or removed container (404/409) has ended the shell just as well.
        const notRunning =
          statusCode(err) === 404 ||
          statusCode(err) === 409 ||
          (err instanceof SandboxError && err.code === 'COVE_ERR_SANDBOX_NOT_RUNNING');
        if (!notRunning) this.#logger?.warn('shell kill exec failed', { error: String(err) });
      }
      await Promise.race([exited, sleep(3_000)]);
      stream.destroy();
    };

    if (holder) {
      return {
        stream,
        resize,
        exited,
        kill: () => killHeld(holder.name),
        ...(detached && { detached }),
        ...(filter && { outputStart: () => filter.start }),
      };
    }
    return { stream, resize, exited, kill: killSession };
  }

  async listHeldShells(key: EnvironmentKey): Promise<string[]> {
    const result = await this.exec(key, HOLDER_LIST_COMMAND, { timeoutMs: 10_000 });
    return parseHeldShells(result.stdout.toString('utf8'));
  }

  async exec(key: EnvironmentKey, cmd: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const container = await this.#running(key);
    return this.#runCollect(container, cmd, options);
  }

  async ping(): Promise<boolean> {
    try {
      await this.#docker.ping();
      return true;
    } catch {
      return false;
    }
  }

  onEnvironmentEvent(listener: (event: EnvironmentEvent) => void): Disposable {
    const abort = new AbortController();
    const oomSeen = new Set<string>();
    const run = async (): Promise<void> => {
      let backoffMs = 500;
      let since = Math.floor(Date.now() / 1000);
      while (!abort.signal.aborted) {
        try {
          const events = await this.#docker.getEvents({
            since,
            filters: { type: ['container'], event: ['die', 'oom'], label: [MANAGED_LABEL_FILTER] },
            abortSignal: abort.signal,
          } as Docker.GetEventsOptions);
          backoffMs = 500;
          await forEachJsonLine(events, abort.signal, (raw) => {
            const event = toEnvironmentEvent(raw, oomSeen);
            if (event) {
              since = Math.max(since, eventTimeS(raw));
              listener(event);
            }
          });
        } catch (err) {
          if (abort.signal.aborted) return;
          this.#logger?.warn('docker event stream failed; retrying', { error: String(err) });
        }
        if (abort.signal.aborted) return;
        // The stream ended (engine restart): resume from the last event we saw, not from now.
        await sleep(backoffMs, undefined, { signal: abort.signal }).catch(() => undefined);
        backoffMs = Math.min(backoffMs * 2, 10_000);
      }
    };
    void run();
    return { dispose: () => abort.abort() };
  }

  async #runCollect(
    container: DockerEngineContainer,
    cmd: readonly string[],
    options: ExecOptions,
  ): Promise<ExecResult> {
    const marker = randomUUID();
    const hasStdin = options.stdin !== undefined;
    const exec = await this.#call('exec', () =>
      container.exec({
        Cmd: [...cmd],
        User: options.user ?? SANDBOX_USER,
        WorkingDir: options.workingDir ?? SANDBOX_HOME,
        Env: toEnvList({ ...options.env, [EXEC_MARKER_ENV]: marker }),
        AttachStdin: hasStdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      }),
    );
    const stream = (await this.#call('exec start', () =>
      exec.start({ hijack: true, stdin: hasStdin }),
    )) as Duplex;

    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const outSink = new PassThrough();
    const errSink = new PassThrough();
    const target = options.stdout;
    let waitingForDrain = false;
    outSink.on('data', (chunk: Buffer) => {
      if (!target) {
        stdout.push(chunk);
        return;
      }
      if (!target.write(chunk) && !waitingForDrain) {
        waitingForDrain = true;
        stream.pause();
        target.once('drain', () => {
          waitingForDrain = false;
          stream.resume();
        });
      }
    });
    errSink.on('data', (chunk: Buffer) => stderr.push(chunk));
    this.#docker.modem.demuxStream(stream, outSink, errSink);

    const ended = new Promise<void>((resolve, reject) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', reject);
    });

    if (options.stdin !== undefined) {
      const input = options.stdin;
      if (Buffer.isBuffer(input)) {
        stream.end(input);
      } else {
        input.on('error', (err: Error) => stream.destroy(err));
        input.pipe(stream);
      }
    }

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => resolve('timeout'), options.timeoutMs);
      }
    });
    try {
      const outcome = await Promise.race([ended.then(() => 'ended' as const), timedOut]);
      if (outcome === 'timeout') {
        stream.destroy();
        await this.#killMarked(container, marker, options.user ?? SANDBOX_USER);
        throw new SandboxError(
          'COVE_ERR_SANDBOX_EXEC_TIMEOUT',
          `exec ${JSON.stringify(cmd[0])} did not finish within ${options.timeoutMs} ms and was killed`,
        );
      }
    } finally {
      if (timer) clearTimeout(timer);
    }
    const exitCode = await waitForExecEnd(exec);
    return {
      exitCode: exitCode ?? -1,
      stdout: Buffer.concat(stdout),
      stderr: Buffer.concat(stderr),
    };
  }

  async #killMarked(container: DockerEngineContainer, marker: string, user: string): Promise<void> {
    try {
      await this.#runCollect(
        container,
        ['/bin/sh', '-c', KILL_MARKED_SCRIPT, 'cove-kill', `${EXEC_MARKER_ENV}=${marker}`],
        { user, timeoutMs: 10_000 },
      );
    } catch (err) {
      this.#logger?.warn('could not kill timed-out exec', { error: String(err) });
    }
  }

  /** An engine call on a container that must be running; 404/409 become NOT_RUNNING. */
  async #execCall<T>(key: EnvironmentKey, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      const code = statusCode(err);
      if (code === 404 || code === 409) {
        throw new SandboxError(
          'COVE_ERR_SANDBOX_NOT_RUNNING',
          `environment ${containerName(key)} is not running`,
          { cause: err },
        );
      }
      throw backendError(err, 'exec');
    }
  }

  async #running(key: EnvironmentKey): Promise<DockerEngineContainer> {
    const name = containerName(key);
    const info = await this.#inspect(name);
    if (!info || !info.State.Running) {
      throw new SandboxError('COVE_ERR_SANDBOX_NOT_RUNNING', `environment ${name} is not running`);
    }
    return this.#docker.getContainer(info.Id);
  }

  async #inspect(nameOrId: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.#docker.getContainer(nameOrId).inspect();
    } catch (err) {
      if (statusCode(err) === 404) {
        return undefined;
      }
      throw backendError(err, 'inspect');
    }
  }

  async #start(name: string, paused: boolean, spec: EnvironmentSpec): Promise<void> {
    const container = this.#docker.getContainer(name);
    try {
      if (paused) {
        await container.unpause();
      } else {
        await container.start();
      }
      this.#logger?.info('environment started', { name });
    } catch (err) {
      if (statusCode(err) === 304) {
        return; // started by someone else meanwhile
      }
      throw mapStartError(err, spec, name);
    }
  }

  async #removeByName(name: string): Promise<void> {
    try {
      await this.#docker.getContainer(name).remove({ force: true });
    } catch (err) {
      const code = statusCode(err);
      // 404: gone already. 409: removal already in progress, which ends the same way.
      if (code !== 404 && code !== 409) {
        throw backendError(err, 'remove');
      }
    }
  }

  async #verifyPaths(spec: EnvironmentSpec): Promise<void> {
    if (!this.#verifyHostPaths) {
      return;
    }
    if (spec.homeHostPath !== undefined && !(await isDirectory(spec.homeHostPath))) {
      throw new SandboxError(
        'COVE_ERR_SANDBOX_HOME_MISSING',
        `home directory ${spec.homeHostPath} does not exist`,
      );
    }
    if (spec.credentialsHostDir !== undefined && !(await isDirectory(spec.credentialsHostDir))) {
      throw new SandboxError(
        'COVE_ERR_SANDBOX_CREDENTIALS_MISSING',
        `credentials directory ${spec.credentialsHostDir} does not exist`,
      );
    }
  }

  /**
   * The region's own network (region-network.ts), made on first use. Looked up before every
   * create rather than remembered: a network removed meanwhile would otherwise fail the create
   * with a 404 that reads like a missing image. One that exists must have Cove's settings.
   */
  async #ensureRegionNetwork(spec: EnvironmentSpec): Promise<void> {
    const name = regionNetworkName(spec.region);
    if (spec.networkMode !== name) return;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const problems = regionNetworkProblems(await this.#docker.getNetwork(name).inspect(), spec.region);
        if (problems.length > 0) {
          throw new SandboxError(
            'COVE_ERR_SANDBOX_NETWORK',
            `${problems.join('; ')}: remove it, Cove remakes it`,
          );
        }
        return;
      } catch (err) {
        if (statusCode(err) !== 404) throw backendError(err, 'network inspect');
      }
      try {
        await this.#docker.createNetwork(regionNetworkOptions(spec.region));
        this.#logger?.info('region network created', { name });
      } catch (err) {
        // 409: another process made it first; look again.
        if (isEngineDiskFull(err)) throw hostFullError(err, `network create ${name}`);
        if (statusCode(err) !== 409) {
          const message = `cannot create network ${name}: ${String(err)}`;
          throw new SandboxError('COVE_ERR_SANDBOX_NETWORK', message, { cause: err });
        }
      }
    }
    throw new SandboxError('COVE_ERR_SANDBOX_NETWORK', `network ${name} kept changing under us`);
  }

  async #call<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      // The container stopped between the check and the exec (Docker 20.10 answers exec start
      // with 500 "… is not running"): the caller's code for that is NOT_RUNNING, not a backend fault.
      if (what.startsWith('exec') && stoppedMeanwhile(err))
        throw new SandboxError('COVE_ERR_SANDBOX_NOT_RUNNING', 'the environment stopped', { cause: err });
      throw backendError(err, what);
    }
  }
}

function toEngineOptions(connection: DockerConnectionOptions = {}): HttpDockerEngineOptions {
  if (connection.host !== undefined) {
    const tls = connection.ca !== undefined || connection.cert !== undefined;
    return {
      host: connection.host,
      port: connection.port ?? (tls ? 2376 : 2375),
      protocol: connection.protocol ?? (tls ? 'https' : 'http'),
      ...(connection.ca !== undefined && { ca: connection.ca }),
      ...(connection.cert !== undefined && { cert: connection.cert }),
      ...(connection.key !== undefined && { key: connection.key }),
    };
  }
  return { socketPath: connection.socketPath ?? DEFAULT_DOCKER_SOCKET };
}

function statusFromInspect(info: Docker.ContainerInspectInfo, key: EnvironmentKey): EnvironmentStatus {
  const running = info.State.Running && !info.State.Paused;
  const startedAt = parseDockerDate(info.State.StartedAt);
  const finishedAt = parseDockerDate(info.State.FinishedAt);
  let stopReason: string | undefined;
  if (!running) {
    if (info.State.OOMKilled) {
      stopReason = 'oom';
    } else if (finishedAt) {
      stopReason = `exited:${info.State.ExitCode}`;
    }
  }
  const hash = info.Config.Labels[LABEL_SPEC_HASH];
  return {
    ownerId: key.ownerId,
    region: key.region,
    state: running ? 'running' : 'stopped',
    id: info.Id,
    ...(hash !== undefined && { specHash: hash }),
    ...(startedAt && { startedAt }),
    ...(stopReason !== undefined && { stopReason }),
  };
}

/** Docker reports "never" as 0001-01-01T00:00:00Z. */
function parseDockerDate(value: string | undefined): Date | undefined {
  if (!value || value.startsWith('0001-')) {
    return undefined;
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function toEnvList(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.entries(env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name}=${value}`);
}

async function waitForExecStart(exec: DockerEngineExec): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const info = await exec.inspect();
    if (info.Running || info.Pid > 0 || info.ExitCode !== null) {
      return;
    }
    await sleep(10);
  }
}

/** The stream ends a moment before the engine records the exit code. */
async function waitForExecEnd(exec: DockerEngineExec): Promise<number | null> {
  for (let i = 0; i < 100; i++) {
    const info = await exec.inspect();
    if (!info.Running) {
      return info.ExitCode;
    }
    await sleep(i < 10 ? 10 : 50);
  }
  return null;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

interface RawDockerEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  time?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

function eventTimeS(raw: RawDockerEvent): number {
  return typeof raw.time === 'number' ? raw.time : Math.floor(Date.now() / 1000);
}

function toEnvironmentEvent(raw: RawDockerEvent, oomSeen: Set<string>): EnvironmentEvent | undefined {
  const attributes = raw.Actor?.Attributes ?? {};
  const key = keyFromLabels(attributes);
  const id = raw.Actor?.ID ?? raw.id;
  const action = raw.Action ?? raw.status;
  if (!key || !id) {
    return undefined;
  }
  if (action === 'oom') {
    oomSeen.add(id);
    return { ...key, kind: 'oom', id };
  }
  if (action === 'die') {
    // The engine sends `oom` just before `die` when the memory limit killed PID 1's tree.
    const stopReason = oomSeen.delete(id) ? 'oom' : `exited:${attributes.exitCode ?? '?'}`;
    return { ...key, kind: 'died', id, stopReason };
  }
  return undefined;
}

async function forEachJsonLine(
  stream: NodeJS.ReadableStream,
  signal: AbortSignal,
  onValue: (value: RawDockerEvent) => void,
): Promise<void> {
  let buffered = '';
  const onAbort = (): void => {
    (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of stream) {
      buffered += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) {
          try {
            onValue(JSON.parse(line) as RawDockerEvent);
          } catch (err) {
            if (err instanceof SyntaxError) continue;
            throw err;
          }
        }
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function statusCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'statusCode' in err) {
    const code = (err as { statusCode: unknown }).statusCode;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

/** The engine's answer for an exec in a container that is no longer running. */
function stoppedMeanwhile(err: unknown): boolean {
  const code = statusCode(err);
  const message =
    typeof err === 'object' && err !== null
      ? String(
          (err as { json?: { message?: unknown } }).json?.message ??
            (err as { message?: unknown }).message ??
            '',
        )
      : '';
  return code === 409 || (code === 500 && /is not running/.test(message));
}

function isNotRunning(err: unknown): boolean {
  return (
    statusCode(err) === 404 ||
    statusCode(err) === 409 ||
    (err instanceof SandboxError && err.code === 'COVE_ERR_SANDBOX_NOT_RUNNING')
  );
}

function isConnectionError(err: unknown): boolean {
  const code =
    typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'ECONNRESET';
}

function backendError(err: unknown, what: string): SandboxError {
  if (err instanceof SandboxError) {
    return err;
  }
  if (isConnectionError(err)) {
    return new SandboxError(
      'COVE_ERR_SANDBOX_UNAVAILABLE',
      `Docker engine unreachable (${what}): ${String(err)}`,
      {
        cause: err,
      },
    );
  }
  return new SandboxError('COVE_ERR_SANDBOX_BACKEND', `Docker ${what} failed: ${String(err)}`, {
    cause: err,
  });
}

/**
 * The engine answers a full data root with a 500 whose message ends in the kernel's words, e.g.
 * `mkdir /var/lib/docker/overlay2/<id>-init: no space left on device`.
 */
export function isEngineDiskFull(err: unknown): boolean {
  if (err instanceof SandboxError) return err.code === 'COVE_ERR_SANDBOX_HOST_FULL';
  return /no space left on device|disk quota exceeded/i.test(String(err));
}

function hostFullError(err: unknown, what: string): SandboxError {
  return new SandboxError(
    'COVE_ERR_SANDBOX_HOST_FULL',
    `Docker ${what} failed: the engine's storage is full: ${String(err)}`,
    {
      cause: err,
    },
  );
}

function mapCreateError(err: unknown, spec: EnvironmentSpec): SandboxError {
  if (isEngineDiskFull(err)) return hostFullError(err, 'create');
  if (spec.runtime !== undefined && /unknown runtime/i.test(String(err))) {
    return new SandboxError(
      'COVE_ERR_SANDBOX_RUNTIME_MISSING',
      `the engine has no runtime ${JSON.stringify(spec.runtime)}; add it to daemon.json "runtimes" (see docs/hardening.md) or remove it from the region`,
      { cause: err },
    );
  }
  if (statusCode(err) === 404) {
    return new SandboxError(
      'COVE_ERR_SANDBOX_IMAGE_MISSING',
      `image ${spec.image} is not present on the Docker engine; build it with scripts/build-images.sh`,
      { cause: err },
    );
  }
  return hostPathError(err, spec, 'create') ?? backendError(err, 'create');
}

function mapStartError(err: unknown, spec: EnvironmentSpec, name: string): SandboxError {
  if (isEngineDiskFull(err)) return hostFullError(err, `start ${name}`);
  return hostPathError(err, spec, `start ${name}`) ?? backendError(err, 'start');
}

/**
 * The engine checks bind sources itself (at create, and again at start if one vanished since),
 * which is the only check when host paths are not verified here (remote engine).
 */
function hostPathError(err: unknown, spec: EnvironmentSpec, what: string): SandboxError | undefined {
  const message = String(err);
  if (!/bind source path does not exist|error while creating mount source path/i.test(message)) {
    return undefined;
  }
  const code =
    spec.credentialsHostDir !== undefined && message.includes(spec.credentialsHostDir)
      ? 'COVE_ERR_SANDBOX_CREDENTIALS_MISSING'
      : 'COVE_ERR_SANDBOX_HOME_MISSING';
  return new SandboxError(code, `Docker ${what} failed: ${message}`, { cause: err });
}
