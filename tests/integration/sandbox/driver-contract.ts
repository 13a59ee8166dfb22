// The SandboxDriver contract, as one suite every backend runs (Docker now, Kubernetes next), in
// the spirit of xterm.js's shared renderer tests. Only the contract's words are used here; what
// is specific to one backend lives in that backend's own test file.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type {
  EnvironmentKey,
  EnvironmentLimits,
  EnvironmentSpec,
  SandboxDriver,
  Shell,
} from '../../../sandbox/sandbox-driver.js';

export interface DriverContractHarness {
  /** A fresh driver instance; a second call stands for a restarted server. */
  createDriver(): SandboxDriver;
  /** The spec the backend needs for this key (image, limits, no home unless it has one). */
  specFor(key: EnvironmentKey, limits?: Partial<EnvironmentLimits>): EnvironmentSpec;
  /** Owner ids must start with this, so leftovers of a crashed run can be found and removed. */
  readonly ownerPrefix: string;
  /**
   * Whether the backend runs real programs (bash, ps, stty): true for real backends. The fake runs
   * the lifecycle, held-shell and error-code parts of the contract, which is what the server's
   * unit and security tests rest on; command output and hardening are real backends' alone.
   */
  readonly runsCommands: boolean;
}

/** Reads a shell's output until `pattern` shows up (or fails after `timeoutMs`). */
export async function readUntil(shell: Shell, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  let seen = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${pattern} in shell output: ${JSON.stringify(seen)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      if (pattern.test(seen)) {
        cleanup();
        resolve(seen);
      }
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      shell.stream.off('data', onData);
    };
    shell.stream.on('data', onData);
  });
}

export function describeSandboxDriverContract(name: string, harness: DriverContractHarness): void {
  describe(`SandboxDriver contract: ${name}`, () => {
    let driver: SandboxDriver;
    const created: EnvironmentKey[] = [];
    const keyFor = (label: string): EnvironmentKey => {
      const key = {
        ownerId: `${harness.ownerPrefix}${label}-${randomBytes(3).toString('hex')}`,
        region: 'eu-west-1',
      };
      created.push(key);
      return key;
    };

    beforeAll(() => {
      driver = harness.createDriver();
    });

    afterAll(async () => {
      const cleaner = harness.createDriver();
      await Promise.allSettled(created.map((key) => cleaner.remove(key)));
    });

    describe('lifecycle', () => {
      it('ensure is idempotent: twice gives one running environment', async () => {
        const key = keyFor('twice');
        const first = await driver.ensure(harness.specFor(key));
        const second = await driver.ensure(harness.specFor(key));
        expect(first.state).toBe('running');
        expect(second.state).toBe('running');
        expect(second.id).toBe(first.id);
        expect(first.startedAt).toBeInstanceOf(Date);
        const mine = (await driver.list()).filter((s) => s.ownerId === key.ownerId);
        expect(mine).toHaveLength(1);
      });

      it('concurrent ensure calls, even from two driver instances, give one environment', async () => {
        const key = keyFor('race');
        const other = harness.createDriver();
        const results = await Promise.all([
          driver.ensure(harness.specFor(key)),
          driver.ensure(harness.specFor(key)),
          other.ensure(harness.specFor(key)),
          other.ensure(harness.specFor(key)),
        ]);
        expect(new Set(results.map((r) => r.id)).size).toBe(1);
        expect(results.every((r) => r.state === 'running')).toBe(true);
        const mine = (await driver.list()).filter((s) => s.ownerId === key.ownerId);
        expect(mine).toHaveLength(1);
      });

      it('stop twice succeeds, status says stopped, ensure starts it again', async () => {
        const key = keyFor('stop');
        const started = await driver.ensure(harness.specFor(key));
        await driver.stop(key);
        await driver.stop(key);
        const stopped = await driver.status(key);
        expect(stopped.state).toBe('stopped');
        expect(stopped.id).toBe(started.id);
        expect(stopped.stopReason).toMatch(/^exited:/);
        const again = await driver.ensure(harness.specFor(key));
        expect(again.state).toBe('running');
        expect(again.id).toBe(started.id);
      });

      it('remove of something missing succeeds, and status says missing', async () => {
        const key = keyFor('missing');
        await driver.remove(key);
        await driver.stop(key);
        expect(await driver.status(key)).toEqual({ ...key, state: 'missing' });
        await driver.ensure(harness.specFor(key));
        await driver.remove(key);
        await driver.remove(key);
        expect((await driver.status(key)).state).toBe('missing');
      });

      it('list after a restart (a new driver instance) re-adopts what runs', async () => {
        const key = keyFor('adopt');
        const before = await driver.ensure(harness.specFor(key));
        const restarted = harness.createDriver();
        const found = (await restarted.list()).find((s) => s.ownerId === key.ownerId);
        expect(found).toMatchObject({ ...key, state: 'running', id: before.id, specHash: before.specHash });
        const adopted = await restarted.ensure(harness.specFor(key));
        expect(adopted.id).toBe(before.id);
      });

      it('leaves a running environment with another spec alone, recreates a stopped one', async () => {
        const key = keyFor('respec');
        const original = await driver.ensure(harness.specFor(key));
        const changed = harness.specFor(key, { pidsLimit: 300 });
        const kept = await driver.ensure(changed);
        expect(kept.id).toBe(original.id);
        expect(kept.specHash).toBe(original.specHash);
        await driver.stop(key);
        const recreated = await driver.ensure(changed);
        expect(recreated.state).toBe('running');
        expect(recreated.specHash).not.toBe(original.specHash);
      });
    });

    describe('held shells and error codes', () => {
      const key = { ownerId: '', region: 'eu-west-1' };
      const bash = ['bash', '--norc', '--noprofile'];

      beforeAll(async () => {
        Object.assign(key, keyFor('held'));
        await driver.ensure(harness.specFor(key));
      });

      it('a held shell is listed by name until killed; kill resolves exited', async () => {
        const name = `contract-${randomBytes(3).toString('hex')}`;
        const shell = await driver.openShell(key, {
          cmd: bash,
          cols: 80,
          rows: 24,
          holder: { name, create: true },
        });
        shell.stream.resume();
        expect(shell.detached).toBeInstanceOf(Promise);
        // The holder starts inside the environment: it is listed once it is up.
        const listedBy = Date.now() + 10_000;
        while (!(await driver.listHeldShells(key)).includes(name) && Date.now() < listedBy) await sleep(100);
        expect(await driver.listHeldShells(key)).toContain(name);
        await shell.kill();
        await expect(Promise.race([shell.exited.then(() => 'exited'), sleep(10_000, 'hung')])).resolves.toBe(
          'exited',
        );
        const deadline = Date.now() + 10_000;
        while ((await driver.listHeldShells(key)).includes(name) && Date.now() < deadline) await sleep(100);
        expect(await driver.listHeldShells(key)).not.toContain(name);
      });

      it('reattaching (create: false) to a held shell that does not exist ends at once with null', async () => {
        const shell = await driver.openShell(key, {
          cmd: bash,
          cols: 80,
          rows: 24,
          holder: { name: `absent-${randomBytes(3).toString('hex')}`, create: false },
        });
        shell.stream.resume();
        await expect(Promise.race([shell.exited, sleep(10_000, 'hung')])).resolves.toBeNull();
      });

      it('exec, openShell and listHeldShells on a missing or stopped environment fail with a code', async () => {
        const missing = { ownerId: `${harness.ownerPrefix}nothing`, region: 'eu-west-1' };
        const stopped = keyFor('stopped');
        await driver.ensure(harness.specFor(stopped));
        await driver.stop(stopped);
        for (const where of [missing, stopped]) {
          await expect(driver.exec(where, ['true'])).rejects.toMatchObject({
            code: 'COVE_ERR_SANDBOX_NOT_RUNNING',
          });
          await expect(driver.openShell(where, { cmd: ['bash'], cols: 80, rows: 24 })).rejects.toMatchObject({
            code: 'COVE_ERR_SANDBOX_NOT_RUNNING',
          });
          await expect(driver.listHeldShells(where)).rejects.toMatchObject({
            code: 'COVE_ERR_SANDBOX_NOT_RUNNING',
          });
        }
      });

      it('answers ping', async () => {
        expect(await driver.ping()).toBe(true);
      });
    });

    if (!harness.runsCommands) return;

    describe('shells and exec', () => {
      const key = { ownerId: '', region: 'eu-west-1' };

      beforeAll(async () => {
        Object.assign(key, keyFor('shell'));
        await driver.ensure(harness.specFor(key));
      });

      it('runs a TTY shell and echoes', async () => {
        const shell = await driver.openShell(key, {
          cmd: ['bash', '--norc', '--noprofile'],
          cols: 80,
          rows: 24,
        });
        try {
          shell.stream.write('echo $((6*7))\n');
          const output = await readUntil(shell, /\b42\b/);
          expect(output).toMatch(/42/);
          shell.stream.write('exit 3\n');
          expect(await shell.exited).toBe(3);
        } finally {
          shell.stream.destroy();
        }
      });

      it('resolves exited for a command that ends at once', async () => {
        const shell = await driver.openShell(key, { cmd: ['sh', '-c', 'exit 5'], cols: 80, rows: 24 });
        shell.stream.resume();
        expect(await shell.exited).toBe(5);
      });

      it('applies the initial size and later resizes', async () => {
        const shell = await driver.openShell(key, {
          cmd: ['bash', '--norc', '--noprofile'],
          cols: 100,
          rows: 30,
        });
        try {
          shell.stream.write('stty size\n');
          await readUntil(shell, /30 100/);
          await shell.resize(132, 43);
          shell.stream.write('stty size\n');
          await readUntil(shell, /43 132/);
        } finally {
          await shell.kill();
        }
      });

      it('kill ends the process inside the environment, with its jobs', async () => {
        const shell = await driver.openShell(key, {
          cmd: ['bash', '--norc', '--noprofile'],
          cols: 80,
          rows: 24,
        });
        const tag = `cove-kill-${randomBytes(4).toString('hex')}`;
        shell.stream.write(`exec -a ${tag}-shell bash --norc --noprofile\n`);
        shell.stream.write(`sleep 1000 & echo started-$!\n`);
        await readUntil(shell, /started-\d+/);
        const running = await driver.exec(key, ['ps', '-eo', 'args']);
        expect(running.stdout.toString()).toContain(`${tag}-shell`);
        await shell.kill();
        await expect(Promise.race([shell.exited.then(() => 'exited'), sleep(5_000, 'hung')])).resolves.toBe(
          'exited',
        );
        const after = await driver.exec(key, ['ps', '-eo', 'args']);
        expect(after.stdout.toString()).not.toContain(`${tag}-shell`);
        expect(after.stdout.toString()).not.toMatch(/^sleep 1000$/m);
      });

      it('exec collects stdout, stderr and the exit code, and feeds stdin', async () => {
        const result = await driver.exec(key, ['sh', '-c', 'echo out; echo err >&2; exit 7']);
        expect(result).toEqual({ exitCode: 7, stdout: Buffer.from('out\n'), stderr: Buffer.from('err\n') });

        const fromBuffer = await driver.exec(key, ['sh', '-c', 'wc -c; cat >/dev/null'], {
          stdin: Buffer.alloc(100_000, 'x'),
        });
        expect(fromBuffer.stdout.toString().trim()).toBe('100000');

        const fromStream = await driver.exec(key, ['tr', 'a-z', 'A-Z'], {
          stdin: Readable.from([Buffer.from('hello '), Buffer.from('cove')]),
        });
        expect(fromStream.stdout.toString()).toBe('HELLO COVE');
      });

      it('exec passes env and runs as the environment user in the home by default', async () => {
        const result = await driver.exec(key, ['sh', '-c', 'echo "$(id -u):$(id -g) $PWD $GREETING"'], {
          env: { GREETING: 'hi' },
        });
        expect(result.stdout.toString().trim()).toBe('1000:1000 /home/cloudshell-user hi');
      });

      it('exec times out, kills the process and says so', async () => {
        await expect(driver.exec(key, ['sleep', '600'], { timeoutMs: 500 })).rejects.toMatchObject({
          code: 'COVE_ERR_SANDBOX_EXEC_TIMEOUT',
        });
        const ps = await driver.exec(key, ['ps', '-eo', 'args']);
        expect(ps.stdout.toString()).not.toMatch(/^sleep 600$/m);
      });
    });

    describe('security baseline inside a real environment', () => {
      const key = { ownerId: '', region: 'eu-west-1' };
      const sh = async (script: string) => driver.exec(key, ['sh', '-c', script], { timeoutMs: 20_000 });

      beforeAll(async () => {
        Object.assign(key, keyFor('hardening'));
        await driver.ensure(harness.specFor(key));
      });

      it('has no capabilities and runs as uid 1000', async () => {
        expect((await sh('grep CapEff /proc/self/status')).stdout.toString()).toMatch(/^CapEff:\s+0{16}$/m);
        expect((await sh('grep CapBnd /proc/self/status')).stdout.toString()).toMatch(/^CapBnd:\s+0{16}$/m);
        expect((await sh('grep NoNewPrivs /proc/self/status')).stdout.toString()).toMatch(/NoNewPrivs:\s+1/);
        expect((await sh('id -u; id -g')).stdout.toString()).toBe('1000\n1000\n');
      });

      it('has a read-only root, no Docker socket, and a writable /tmp', async () => {
        const write = await sh('echo x > /usr/x');
        expect(write.exitCode).not.toBe(0);
        expect(write.stderr.toString()).toMatch(/Read-only file system|Permission denied/);
        const rootWrite = await driver.exec(key, ['sh', '-c', 'echo x > /usr/x'], { user: '0:0' });
        expect(rootWrite.stderr.toString()).toMatch(/Read-only file system/);
        expect((await sh('test -e /var/run/docker.sock || test -e /run/docker.sock')).exitCode).not.toBe(0);
        expect((await sh('echo ok > /tmp/probe && cat /tmp/probe')).stdout.toString()).toBe('ok\n');
        expect((await sh('echo ok > /var/tmp/probe && cat /var/tmp/probe')).stdout.toString()).toBe('ok\n');
        expect((await sh('echo ok > "$HOME/probe" && cat "$HOME/probe"')).stdout.toString()).toBe('ok\n');
      });

      it('caps a fork bomb at the pids limit without hurting the host', async () => {
        const pidsLimit = 128;
        const bombKey = keyFor('forkbomb');
        await driver.ensure(harness.specFor(bombKey, { pidsLimit }));
        // dash gives up on the first failed fork instead of retrying like bash.
        const bomb = await driver.exec(
          bombKey,
          ['/bin/sh', '-c', 'i=0; while [ $i -lt 2000 ]; do sleep 30 & i=$((i+1)); done; echo "started $i"'],
          { timeoutMs: 30_000 },
        );
        expect(bomb.stdout.toString()).not.toContain('started 2000');
        expect(bomb.stderr.toString()).toMatch(/Cannot fork|Resource temporarily unavailable/);
        await driver.remove(bombKey);
        expect(await driver.ping()).toBe(true);
        expect((await sh('echo alive')).stdout.toString()).toBe('alive\n');
      });
    });
  });
}
