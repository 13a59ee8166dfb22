/**
 * The terminal holder (cove-terminal on cove-holder) through the Docker driver, in the real image:
 * the exit-code contract (a shell's own 253/254 is not mistaken for "gone"/"detached"), reattach
 * to the same shell, output printed while no client was attached replayed from the byte asked for
 * (and its bound), per-terminal variables that reach the shell but no command line, list, kill.
 */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../../sandbox/environment-image.js';
import { DockerSandboxDriver } from '../../../sandbox/docker/docker-sandbox-driver.js';
import { LABEL_OWNER, MANAGED_LABEL_FILTER } from '../../../sandbox/names.js';
import type { EnvironmentKey, Shell } from '../../../sandbox/sandbox-driver.js';

const IMAGE = 'cove/sandbox:latest';
const OWNER = `test-holder-${randomBytes(4).toString('hex')}`;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const driver = new DockerSandboxDriver({ docker });
const key: EnvironmentKey = { ownerId: OWNER, region: 'eu-west-1' };

afterAll(async () => {
  const containers = await docker.listContainers({ all: true, filters: { label: [MANAGED_LABEL_FILTER] } });
  await Promise.allSettled(
    containers
      .filter((c) => c.Labels[LABEL_OWNER] === OWNER)
      .map((c) => docker.getContainer(c.Id).remove({ force: true })),
  );
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const output = (shell: Shell) => {
  let text = '';
  shell.stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return {
    get text() {
      return text;
    },
    async waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(text);
        if (match) return match;
        if (Date.now() > deadline)
          throw new Error(`no ${String(pattern)} in ${JSON.stringify(text.slice(-300))}`);
        await sleep(50);
      }
    },
  };
};
const open = (name: string, create: boolean, env?: Record<string, string>, from?: number) =>
  driver.openShell(key, {
    cmd: ['bash', '--norc', '-i'],
    cols: 100,
    rows: 30,
    holder: { name, create, ...(from !== undefined ? { from } : {}) },
    ...(env ? { env } : {}),
  });
/** Every `line-N` line of `text`, as numbers, in the order they came. */
const numbered = (text: string) => [...text.matchAll(/^line-(\d+)\r$/gm)].map((m) => Number(m[1]));
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const run = async (script: string) => (await driver.exec(key, ['sh', '-c', script])).stdout.toString();

describe('cove-terminal (cove-holder) through the driver', () => {
  it('passes the shell exit code on, also 253 and 254, which mean "gone" and "detached" for the holder', async () => {
    await driver.ensure({
      ...key,
      image: IMAGE,
      limits: { ...DEFAULT_LIMITS, memoryBytes: 256 * 1024 ** 2 },
      env: { COVE_USER: 'test', COVE_REGION: key.region },
    });
    for (const code of [0, 7, 253, 254, 255]) {
      const shell = await open(`code-${code}`, true);
      const out = output(shell);
      shell.stream.write(`echo ready-$((${code}+1000)); exit ${code}\r`);
      await out.waitFor(new RegExp(`ready-${code + 1000}`));
      expect(await shell.exited).toBe(code);
      // The holder's header (where the output starts) never reaches the reader.
      expect(out.text, JSON.stringify(out.text)).not.toContain('cove-holder');
      expect(shell.outputStart?.()).toBe(0);
    }
    expect(await run('cove-terminal list; ls /tmp/cove-terminals')).toBe('');
  });

  it('reattaches to the same shell after its stream dropped; a gone name answers null at once', async () => {
    const first = await open('again', true);
    const a = output(first);
    first.stream.write('echo "pid-[$$]"\r');
    const pid = (await a.waitFor(/pid-\[(\d+)\]/))[1];
    first.stream.destroy();
    await first.detached;
    const second = await open('again', false);
    const b = output(second);
    second.stream.write('echo "pid-[$$]"\r');
    expect((await b.waitFor(/pid-\[(\d+)\]/))[1]).toBe(pid);
    expect(await run('cove-terminal list')).toBe('again\n');
    await second.kill();
    expect(await run('cove-terminal list; ps -eo args | grep -c "[c]ove-terminals/again"')).toBe('0\n');
    const gone = await open('again', false);
    expect(await gone.exited).toBeNull();
  });

  it('replays what the shell printed while no client was attached, from the byte asked for, once', async () => {
    const first = await open('away', true);
    const a = output(first);
    let seen = 0;
    first.stream.on('data', (chunk: Buffer) => (seen += chunk.length));
    first.stream.write('for i in $(seq 1 300); do echo line-$i; sleep 0.01; done; echo end-$((4+4))\r');
    await a.waitFor(/^line-20\r$/m);
    first.stream.destroy();
    await first.detached;
    const offset = (first.outputStart?.() ?? -1) + seen;
    // Printed while nobody is attached: with dtach this went nowhere.
    await sleep(2_000);
    const second = await open('away', false, undefined, offset);
    const b = output(second);
    await b.waitFor(/^end-8\r$/m);
    // It starts exactly where the first stream stopped: nothing twice, nothing missing.
    expect(second.outputStart?.()).toBe(offset);
    const before = numbered(a.text);
    expect(before.length).toBeGreaterThanOrEqual(20);
    expect(before.length).toBeLessThan(300);
    expect([...before, ...numbered(b.text)]).toEqual(oneTo(300));
    await second.kill();
  });

  it('keeps the newest 1 MiB: a reattach from a byte no longer kept starts at the oldest whole line', async () => {
    const first = await open('flood', true);
    const a = output(first);
    first.stream.write('sleep 1; seq 1 300000; echo end-$((5+5))\r');
    await a.waitFor(/sleep 1; seq/);
    first.stream.destroy();
    await first.detached;
    // About 2 MB printed while no client is attached: more than the holder keeps.
    await sleep(4_000);
    const again = await open('flood', false, undefined, 0);
    let bytes = 0;
    const b = output(again);
    again.stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    await b.waitFor(/^end-10\r$/m, 30_000);
    const start = again.outputStart?.() ?? 0;
    expect(start).toBeGreaterThan(1024 * 1024);
    expect(bytes).toBeLessThanOrEqual(1024 * 1024);
    // From a line start on: the first line is a whole number, then every number up to 300000.
    const numbers = b.text
      .split('\r\n')
      .filter((line) => /^\d+$/.test(line))
      .map(Number);
    expect(b.text.split('\r\n')[0]).toMatch(/^\d+$/);
    expect(numbers.at(-1)).toBe(300_000);
    const firstNumber = numbers[0] ?? 0;
    expect(numbers).toEqual(Array.from({ length: 300_001 - firstNumber }, (_, i) => firstNumber + i));
    await again.kill();
  });

  it('gives per-terminal variables to that shell only, never on a command line', async () => {
    const secret = `tok-${randomBytes(8).toString('hex')}`;
    const shell = await open('vars', true, { COVE_TEST_TOKEN: secret });
    const out = output(shell);
    shell.stream.write('echo "t=[$COVE_TEST_TOKEN] v=[${COVE_TERMINAL_VARS-unset}]"\r');
    await out.waitFor(new RegExp(`t=\\[${secret}\\] v=\\[unset\\]`));
    const other = await open('vars-other', true);
    const o = output(other);
    other.stream.write('echo "t=[${COVE_TEST_TOKEN-none}]"\r');
    await o.waitFor(/t=\[none\]/);
    expect(await run('cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "')).not.toContain(secret);
    await shell.kill();
    await other.kill();
  });
});
