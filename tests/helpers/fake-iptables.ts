import { expect } from 'vitest';
import type { IptablesBinary, IptablesResult, IptablesRunner } from '../../sandbox/docker/iptables.js';

/** A fake iptables holding chains in memory; restore scripts are applied line by line. */
export class FakeIptables implements IptablesRunner {
  readonly tables: Record<'ipv4' | 'ipv6', Map<string, string[]>> = {
    ipv4: new Map([
      ['INPUT', []],
      ['FORWARD', []],
      ['DOCKER-USER', ['-A DOCKER-USER -j RETURN']],
    ]),
    ipv6: new Map([
      ['INPUT', []],
      ['FORWARD', []],
    ]),
  };
  readonly restores: string[] = [];

  async run(binary: IptablesBinary, args: readonly string[], stdin = ''): Promise<IptablesResult> {
    const table = this.tables[binary.startsWith('ip6') ? 'ipv6' : 'ipv4'];
    if (binary.endsWith('-restore')) {
      this.restores.push(stdin);
      for (const line of stdin.split('\n')) {
        let match: RegExpExecArray | null;
        if ((match = /^:(\S+)/.exec(line))) table.set(match[1]!, []);
        else if ((match = /^-A (\S+) /.exec(line))) table.get(match[1]!)?.push(line);
        else if ((match = /^-I (\S+) 1 (.*)$/.exec(line)))
          table.get(match[1]!)?.unshift(`-A ${match[1]} ${match[2]}`);
        else if ((match = /^-D (\S+) (.*)$/.exec(line))) {
          const rules = table.get(match[1]!)!;
          rules.splice(rules.indexOf(`-A ${match[1]} ${match[2]}`), 1);
        }
      }
      return { code: 0, stdout: '', stderr: '' };
    }
    expect(args).toEqual(['-S']);
    const lines = [...table].flatMap(([name, rules]) => [
      ['INPUT', 'FORWARD', 'OUTPUT'].includes(name) ? `-P ${name} ACCEPT` : `-N ${name}`,
      ...rules,
    ]);
    return { code: 0, stdout: lines.join('\n') + '\n', stderr: '' };
  }
}
