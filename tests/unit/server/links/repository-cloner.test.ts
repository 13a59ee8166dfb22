import { describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult } from '../../../../sandbox/index.js';
import { SandboxError } from '../../../../sandbox/index.js';
import { gitReason, RepositoryCloner } from '../../../../server/links/repository-cloner.js';

const key = { ownerId: 'u1', region: 'us-east-1' };

function cloner(
  state: string,
  exec: (cmd: readonly string[], options: ExecOptions) => Promise<ExecResult>,
  prefixes = ['https://'],
) {
  const calls: { cmd: readonly string[]; options: ExecOptions }[] = [];
  let holds = 0;
  let released = 0;
  const service = new RepositoryCloner({
    allowedPrefixes: prefixes,
    timeoutMs: 7_000,
    home: '/home/cloudshell-user',
    environments: {
      status: async () => ({ state }),
      hold: () => {
        holds++;
        return { dispose: () => released++ };
      },
      exec: async (_key, cmd, options) => {
        calls.push({ cmd, options });
        return exec(cmd, options);
      },
    },
  });
  return { service, calls, holds: () => holds, released: () => released };
}

const result = (exitCode: number, stdout: string, stderr = ''): ExecResult => ({
  exitCode,
  stdout: Buffer.from(stdout),
  stderr: Buffer.from(stderr),
});

describe('RepositoryCloner', () => {
  it('clones as the user in the home, URL and folder as separate arguments, no prompt, with a timeout', async () => {
    const { service, calls, holds, released } = cloner('running', async () => result(0, 'cloned\n'));
    await expect(service.clone(key, 'https://github.com/acme/tools.git')).resolves.toEqual({
      url: 'https://github.com/acme/tools.git',
      folder: 'tools',
      outcome: 'cloned',
    });
    const call = calls[0];
    expect(call?.cmd.slice(0, 2)).toEqual(['sh', '-c']);
    expect(call?.cmd.slice(3)).toEqual(['cove-clone', 'tools', 'https://github.com/acme/tools.git', '7']);
    expect(call?.cmd[2]).toContain('timeout -k 5 "$3" git clone --quiet --depth 1 -- "$2" "$1"');
    // The exec's own limit is only a backstop behind `timeout`, which ends git's whole group.
    expect(call?.options).toMatchObject({
      workingDir: '/home/cloudshell-user',
      env: { GIT_TERMINAL_PROMPT: '0' },
      timeoutMs: 22_000,
    });
    expect(call?.options.user).toBeUndefined();
    expect([holds(), released()]).toEqual([1, 1]);
  });

  it('says a folder that exists was reused', async () => {
    const { service } = cloner('running', async () => result(0, 'reused\n'));
    await expect(service.clone(key, 'https://github.com/acme/tools')).resolves.toMatchObject({
      outcome: 'reused',
    });
  });

  it('refuses a bad URL before touching the environment', async () => {
    const { service, calls } = cloner('running', async () => result(0, 'cloned'));
    await expect(service.clone(key, 'file:///etc')).rejects.toMatchObject({
      code: 'COVE_ERR_LINK_GIT_REFUSED',
      statusCode: 400,
      message: expect.stringContaining('not file:'),
    });
    expect(calls).toHaveLength(0);
  });

  it('never starts an environment: a stopped one is a 409 that says to open a terminal', async () => {
    const { service, calls } = cloner('stopped', async () => result(0, 'cloned'));
    await expect(service.clone(key, 'https://github.com/acme/tools')).rejects.toMatchObject({
      code: 'COVE_ERR_LINK_NOT_RUNNING',
      statusCode: 409,
    });
    expect(calls).toHaveLength(0);
  });

  it("passes git's reason on, without control characters", async () => {
    const { service } = cloner('running', async () =>
      result(
        128,
        '',
        "Cloning into 'tools'...\nfatal: unable to access 'https://x/': Could not resolve host: x\u001b[31m\n",
      ),
    );
    await expect(service.clone(key, 'https://x/tools')).rejects.toMatchObject({
      code: 'COVE_ERR_LINK_CLONE_FAILED',
      statusCode: 422,
      message:
        "Cloning https://x/tools failed: unable to access 'https://x/': Could not resolve host: x[31m. Nothing was typed. Check the address and that your environment can reach that host.",
    });
  });

  it.each([124, 137])('turns timeout exit %i into the time-limit message', async (exitCode) => {
    const { service } = cloner('running', async () => result(exitCode, ''));
    await expect(service.clone(key, 'https://github.com/acme/tools')).rejects.toMatchObject({
      code: 'COVE_ERR_LINK_CLONE_TIMEOUT',
      statusCode: 504,
      message:
        'Cloning https://github.com/acme/tools took longer than 7 s and was stopped. Nothing was typed. If ~/tools was left half-made, delete it and open the link again.',
    });
  });

  it('turns the exec timeout into a message with the time and the folder, and releases the hold', async () => {
    const { service, released } = cloner('running', async () => {
      throw new SandboxError('COVE_ERR_SANDBOX_EXEC_TIMEOUT', 'timed out');
    });
    await expect(service.clone(key, 'https://github.com/acme/tools')).rejects.toMatchObject({
      code: 'COVE_ERR_LINK_CLONE_TIMEOUT',
      message: expect.stringContaining('longer than 7 s'),
    });
    expect(released()).toBe(1);
  });

  it('gitReason takes the last fatal line', () => {
    expect(gitReason('warning: x\nfatal: repository not found\n')).toBe('repository not found');
    expect(gitReason('')).toBe('');
  });
});
