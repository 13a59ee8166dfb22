/**
 * Interactive shells (SandboxDriver.openShell): a TTY exec, plain or under the session holder,
 * with resize, the exit code, and a kill that ends the shell's whole session rather than just
 * the stream.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import { containerName } from '../names.js';
import type { EnvironmentKey, SandboxLogger, Shell, ShellOptions } from '../sandbox-driver.js';
import { SandboxError } from '../sandbox-error.js';
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
import { SANDBOX_HOME, SANDBOX_USER } from '../environment-image.js';
import { backendError, engineCall, isNotRunning, runningCall, statusCode } from './docker-errors.js';
import { toEnvList, waitForExecEnd, waitForExecStart, type DockerExec } from './docker-exec.js';
import type { DockerEngine } from './http-docker-engine.js';

const SHELL_MARKER_ENV = 'COVE_SHELL_ID';

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

export class DockerShells {
  readonly #docker: DockerEngine;
  readonly #logger: SandboxLogger | undefined;
  readonly #exec: DockerExec;

  constructor(docker: DockerEngine, exec: DockerExec, logger: SandboxLogger | undefined) {
    this.#docker = docker;
    this.#exec = exec;
    this.#logger = logger;
  }

  async open(key: EnvironmentKey, options: ShellOptions): Promise<Shell> {
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
    const exec = await runningCall(key, () =>
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
    const raw = (await engineCall('exec start', () =>
      exec.start({ hijack: true, stdin: true, Tty: true }),
    )) as Duplex;
    // Keystrokes are single bytes: over TCP (a remote engine) Nagle would hold them back.
    (raw as Partial<Socket>).setNoDelay?.(true);
    const filter = holder ? new HolderOutputFilter(raw) : undefined;
    const stream = filter ?? raw;

    const heldExitCode = async (name: string): Promise<number | null> => {
      try {
        const result = await this.#exec.run(container, holderExitCodeCommand(name), {
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
        await this.#exec.run(container, holderKillCommand(name), {
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
        await this.#exec.run(
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

  async listHeld(key: EnvironmentKey): Promise<string[]> {
    const result = await this.#exec.exec(key, HOLDER_LIST_COMMAND, { timeoutMs: 10_000 });
    return parseHeldShells(result.stdout.toString('utf8'));
  }
}
