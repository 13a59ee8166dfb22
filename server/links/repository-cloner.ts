/**
 * The clone an "Open in Cove" link asks for, after the user confirmed it: inside the user's own
 * running environment, as the user (uid 1000, so the files are theirs and the user's git config
 * applies), into `~/<folder>`. A folder that exists is reused as it is (no pull, no reset: it may
 * hold the user's work). git never prompts (no terminal, `GIT_TERMINAL_PROMPT=0`) and is stopped
 * after `timeoutMs`. The URL and folder reach git as separate arguments after `--`, never through a
 * shell line. The routes call `check` and `clone` and nothing else.
 */
import { errors } from '../errors.js';
import type { EnvironmentKey, ExecOptions, ExecResult } from '../../sandbox/index.js';
import { checkGitLink, type GitLink } from './git-link.js';

export interface RepositoryClonerDeps {
  readonly allowedPrefixes: readonly string[];
  readonly timeoutMs: number;
  /** The environment's home inside the container. */
  readonly home: string;
  readonly environments: {
    status(key: EnvironmentKey): Promise<{ readonly state: string }>;
    hold(key: EnvironmentKey): { dispose(): void };
    exec(key: EnvironmentKey, cmd: readonly string[], options: ExecOptions): Promise<ExecResult>;
  };
}

export type CloneOutcome = 'cloned' | 'reused';

export interface CloneResult extends GitLink {
  readonly outcome: CloneOutcome;
}

// $1 folder, $2 URL, $3 seconds. Exit 0 prints what happened; 124/137 is the time limit; anything
// else is git's failure. `timeout` signals git's whole process group (git-remote-https included)
// from inside the environment, so the limit does not depend on how a backend ends an exec; the
// exec's own limit stays as a backstop.
const cloneScript = [
  'if [ -e "$1" ] || [ -L "$1" ]; then echo reused; exit 0; fi',
  'timeout -k 5 "$3" git clone --quiet --depth 1 -- "$2" "$1" </dev/null && echo cloned',
].join('\n');
const timedOut = new Set([124, 137]);
/** The exec's own limit, a backstop behind `timeout` in the script. */
const backstopMs = 15_000;

/** git's last `fatal:`/`error:` line, shortened, without hidden characters (it goes on the page). */
export function gitReason(stderr: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((line) => line.replace(/[\p{Cc}\p{Cf}]/gu, '').trim())
    .filter((line) => line !== '');
  const line = [...lines].reverse().find((l) => /^(fatal|error):/.test(l)) ?? lines.at(-1) ?? '';
  return line.replace(/^(fatal|error):\s*/, '').slice(0, 300);
}

export class RepositoryCloner {
  constructor(private readonly deps: RepositoryClonerDeps) {}

  /** The repository and folder a link names, or a 400 that says what is wrong with it. */
  check(raw: string): GitLink {
    const result = checkGitLink(raw, this.deps.allowedPrefixes);
    if (!result.ok) throw errors.linkGitRefused(result.problem, result.scheme);
    return result.link;
  }

  async clone(key: EnvironmentKey, raw: string): Promise<CloneResult> {
    const link = this.check(raw);
    const { environments } = this.deps;
    // Only into a running environment: the terminal the user just opened started it (with every
    // check a start makes); a clone must not start one on its own.
    if ((await environments.status(key)).state !== 'running') throw errors.linkNotRunning();
    const hold = environments.hold(key);
    let result: ExecResult;
    try {
      const seconds = String(Math.ceil(this.deps.timeoutMs / 1000));
      result = await environments.exec(
        key,
        ['sh', '-c', cloneScript, 'cove-clone', link.folder, link.url, seconds],
        {
          workingDir: this.deps.home,
          env: { GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'false', SSH_ASKPASS: 'false' },
          timeoutMs: this.deps.timeoutMs + backstopMs,
        },
      );
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code === 'COVE_ERR_SANDBOX_EXEC_TIMEOUT')
        throw errors.linkCloneTimeout(link.url, link.folder, Math.round(this.deps.timeoutMs / 1000));
      throw error;
    } finally {
      hold.dispose();
    }
    const said = result.stdout.toString('utf8').trim().split('\n').at(-1);
    if (result.exitCode === 0 && (said === 'cloned' || said === 'reused')) return { ...link, outcome: said };
    if (timedOut.has(result.exitCode))
      throw errors.linkCloneTimeout(link.url, link.folder, Math.round(this.deps.timeoutMs / 1000));
    throw errors.linkCloneFailed(link.url, gitReason(result.stderr.toString('utf8')));
  }
}
