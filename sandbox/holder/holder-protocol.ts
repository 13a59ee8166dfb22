/**
 * How a backend talks to the session holder in the environment image
 * (docker/sandbox/rootfs/usr/local/bin/cove-terminal): its command line and its exit codes. The
 * same in every backend, since the holder runs inside the environment whatever runs the
 * environment; only the way a process is started there (a Docker exec, a Kubernetes exec) differs.
 */
import type { ShellOptions } from '../sandbox-driver.js';

/** The holder in the image. */
export const HOLDER_COMMAND = '/usr/local/bin/cove-terminal';
/** What a holder name may be (`ShellOptions.holder.name`). */
export const HOLDER_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** The client ended while the held shell lives on (another client took over, or it was told to). */
export const HOLDER_DETACHED = 254;
/** There was no held shell of that name to reattach to. */
export const HOLDER_GONE = 253;
/** The shell ended with a code the holder cannot pass on (253-255): ask with `exit-code`. */
export const HOLDER_ASK_CODE = 255;

/** The command line that starts (or reattaches to) the held shell `holder` running `cmd`. */
export function holderCommand(holder: NonNullable<ShellOptions['holder']>, cmd: readonly string[]): string[] {
  return holder.create
    ? [HOLDER_COMMAND, 'attach', holder.name, ...cmd]
    : [HOLDER_COMMAND, 'reattach', holder.name, String(Math.max(0, Math.floor(holder.from ?? 0)))];
}

/** The command line that prints the held shell's exit code, once it has ended. */
export function holderExitCodeCommand(name: string): string[] {
  return [HOLDER_COMMAND, 'exit-code', name];
}

/** The command line that ends a held shell and everything it started. */
export function holderKillCommand(name: string): string[] {
  return [HOLDER_COMMAND, 'kill', name];
}

/** The command line that lists the held shells alive, one name a line. */
export const HOLDER_LIST_COMMAND: readonly string[] = [HOLDER_COMMAND, 'list'];

/** The names in `list`'s output; anything that is not a valid holder name is dropped. */
export function parseHeldShells(output: string): string[] {
  return output
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => HOLDER_NAME.test(name));
}

/** `exit-code`'s answer: the code, or null when the holder does not know it. */
export function parseHolderExitCode(output: string): number | null {
  const text = output.trim();
  return /^\d{1,3}$/.test(text) ? Number(text) : null;
}

/**
 * What the holder client's exit code means for the held shell: `detached` when it lives on (an
 * unknown code, with the engine gone and the client maybe still running, counts as that), `ask`
 * when the real code must be asked for, or the shell's exit code (null when there was none).
 */
export function holderOutcome(
  code: number | null,
): { kind: 'detached' } | { kind: 'ask' } | { kind: 'exited'; code: number | null } {
  if (code === HOLDER_DETACHED || code === null) return { kind: 'detached' };
  if (code === HOLDER_ASK_CODE) return { kind: 'ask' };
  return { kind: 'exited', code: code === HOLDER_GONE ? null : code };
}
