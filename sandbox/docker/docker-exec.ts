/**
 * Commands run to their end in a running environment (SandboxDriver.exec): output collected or
 * streamed with backpressure, and on timeout the process and its children killed by a marker.
 */
import { randomUUID } from 'node:crypto';
import { PassThrough, type Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import type { EnvironmentKey, ExecOptions, ExecResult, SandboxLogger } from '../sandbox-driver.js';
import { SandboxError } from '../sandbox-error.js';
import { SANDBOX_HOME, SANDBOX_USER } from '../environment-image.js';
import { engineCall } from './docker-errors.js';
import type { DockerLifecycle } from './docker-lifecycle.js';
import type { DockerEngine, DockerEngineContainer, DockerEngineExec } from './http-docker-engine.js';

const EXEC_MARKER_ENV = 'COVE_EXEC_ID';

/** Kills every process started with the marker (a timed-out exec and its children). */
const KILL_MARKED_SCRIPT = `
for file in $(grep -lzxF "$1" /proc/[0-9]*/environ 2>/dev/null); do
  dir=\${file%/environ}
  kill -KILL "\${dir#/proc/}" 2>/dev/null
done
exit 0
`;

export class DockerExec {
  readonly #docker: DockerEngine;
  readonly #logger: SandboxLogger | undefined;
  readonly #lifecycle: DockerLifecycle;

  constructor(docker: DockerEngine, lifecycle: DockerLifecycle, logger: SandboxLogger | undefined) {
    this.#docker = docker;
    this.#lifecycle = lifecycle;
    this.#logger = logger;
  }

  async exec(key: EnvironmentKey, cmd: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const container = await this.#lifecycle.running(key);
    return this.run(container, cmd, options);
  }

  /** Runs `cmd` in `container` to its end, collecting (or streaming) its output. */
  async run(
    container: DockerEngineContainer,
    cmd: readonly string[],
    options: ExecOptions,
  ): Promise<ExecResult> {
    const marker = randomUUID();
    const hasStdin = options.stdin !== undefined;
    const exec = await engineCall('exec', () =>
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
    const stream = (await engineCall('exec start', () =>
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
      await this.run(
        container,
        ['/bin/sh', '-c', KILL_MARKED_SCRIPT, 'cove-kill', `${EXEC_MARKER_ENV}=${marker}`],
        { user, timeoutMs: 10_000 },
      );
    } catch (err) {
      this.#logger?.warn('could not kill timed-out exec', { error: String(err) });
    }
  }
}

export function toEnvList(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.entries(env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name}=${value}`);
}

export async function waitForExecStart(exec: DockerEngineExec): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const info = await exec.inspect();
    if (info.Running || info.Pid > 0 || info.ExitCode !== null) {
      return;
    }
    await sleep(10);
  }
}

/** The stream ends a moment before the engine records the exit code. */
export async function waitForExecEnd(exec: DockerEngineExec): Promise<number | null> {
  for (let i = 0; i < 100; i++) {
    const info = await exec.inspect();
    if (!info.Running) {
      return info.ExitCode;
    }
    await sleep(i < 10 ? 10 : 50);
  }
  return null;
}
