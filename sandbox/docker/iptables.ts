/**
 * Runs iptables, ip6tables and their -restore tools with execFile (no shell). Output lines that
 * are warnings about other tables (the nft backend prints one per call while an empty legacy
 * table exists) are dropped, so callers can parse what remains.
 */
import { execFile } from 'node:child_process';

export type IptablesBinary = 'iptables' | 'ip6tables' | 'iptables-restore' | 'ip6tables-restore';

export interface IptablesResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface IptablesRunner {
  run(binary: IptablesBinary, args: readonly string[], stdin?: string): Promise<IptablesResult>;
}

const WARNING = /^# Warning: |^iptables-legacy tables present|^ip6tables-legacy tables present/;

export function withoutWarnings(text: string): string {
  return text
    .split('\n')
    .filter((line) => !WARNING.test(line))
    .join('\n');
}

export class ExecIptablesRunner implements IptablesRunner {
  constructor(private readonly timeoutMs = 10_000) {}

  run(binary: IptablesBinary, args: readonly string[], stdin?: string): Promise<IptablesResult> {
    return new Promise((resolve, reject) => {
      // -w: wait for the xtables lock instead of failing when Docker changes rules at the same time.
      const child = execFile(
        binary,
        ['-w', ...args],
        { timeout: this.timeoutMs, maxBuffer: 4 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error && typeof (error as NodeJS.ErrnoException).code === 'string') {
            reject(error); // not started at all (ENOENT: no iptables on this host)
            return;
          }
          const code = error ? ((error as { code?: number }).code ?? 1) : 0;
          resolve({ code, stdout: withoutWarnings(stdout), stderr: withoutWarnings(stderr) });
        },
      );
      // The tool may exit before reading (a bad option): that is its exit code's story, not EPIPE's.
      child.stdin?.on('error', () => {});
      child.stdin?.end(stdin);
    });
  }
}
