/**
 * SECURITY-TESTS C01–C05 (resource abuse inside a real environment built with the production
 * HostConfig), I03 (what a user sees of the host from inside) and A06 against real containers.
 * Alice attacks; Bob's shell runs an echo probe the whole time: each case asserts that Bob's
 * echoes kept coming back during the attack (each within 20 s, which only catches a hang) and
 * prints their p99 for the record; how fast they are is a number for `npm run bench`, not a test.
 * Small limits keep it quick: a 64 MiB home, a 16 MiB /tmp, 128 processes, half a CPU.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../server/protocol/terminal-wire.js';
import { TerminalTestClient } from '../unit/server/terminals/ws-test-client.js';
import {
  HomeTestServer,
  MiB,
  origin,
  regionA,
  type HomeTestUser,
} from '../integration/server/homes/home-test-server.js';

const run = promisify(execFile);
const docker = '/usr/bin/docker';
const limits = { pidsLimit: 128, memoryBytes: 256 * MiB, cpuMillis: 500, tmpSizeBytes: 16 * MiB };

let server: HomeTestServer;
let alice: HomeTestUser;
let bob: HomeTestUser;
let admin: HomeTestUser;
let attacker: TerminalTestClient;
let victim: TerminalTestClient;

async function containerOf(user: HomeTestUser): Promise<{ id: string; inspect: Record<string, unknown> }> {
  const { stdout } = await run(docker, [
    'ps',
    '-aq',
    '--no-trunc',
    '--filter',
    `label=cove.owner=${user.id}`,
  ]);
  const id = stdout.trim().split('\n')[0] ?? '';
  const inspect = JSON.parse((await run(docker, ['inspect', id])).stdout) as Array<Record<string, unknown>>;
  return { id, inspect: inspect[0] as Record<string, unknown> };
}

const cgroupFile = (controller: string, id: string, file: string): string =>
  readFileSync(`/sys/fs/cgroup/${controller}/docker/${id}/${file}`, 'utf8').trim();

/**
 * Bob's echo round trips while `attack` runs (each must come back within 20 s); returns how many
 * came back, and prints their p99 for the record.
 */
async function whileProbing(label: string, attack: () => Promise<void>): Promise<number> {
  const samples: number[] = [];
  let stop = false;
  const probe = (async () => {
    for (let n = 0; !stop; n++) {
      const started = performance.now();
      victim.send(`echo q${n}-$((1+1))\r`);
      await victim.waitForText(`q${n}-2`, 20_000);
      samples.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  try {
    await attack();
  } finally {
    stop = true;
    await probe;
  }
  victim.clearOutput();
  const sorted = samples.sort((a, b) => a - b);
  const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? Infinity;
  console.log(`${label}: Bob's echo p99 ${p99.toFixed(1)} ms over ${samples.length} round trips`);
  return samples.length;
}

/** Runs `command` inside the user's container as the user (through the Docker API), like a second tab. */
async function inside(user: HomeTestUser, command: string): Promise<string> {
  const { id } = await containerOf(user);
  try {
    const { stdout, stderr } = await run(
      docker,
      ['exec', '-u', 'cloudshell-user', id, 'bash', '-c', command],
      {
        maxBuffer: 16 * MiB,
      },
    );
    return stdout + stderr;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return `${e.stdout ?? ''}${e.stderr ?? ''}exit=${e.code ?? '?'}`;
  }
}

/** Opens a terminal and waits for its prompt (the shell may sit under a session holder that redraws). */
async function openShell(user: HomeTestUser): Promise<TerminalTestClient> {
  const created = await server.request(user, 'POST', `/api/environments/${regionA}/terminals`, {});
  expect(created.statusCode, created.body).toBe(201);
  const { terminalId } = created.json<{ terminalId: string }>();
  const client = await TerminalTestClient.connect(
    `ws://${server.base}/api/environments/${regionA}/terminals/${terminalId}/ws`,
    { origin, cookie: user.cookie },
  );
  server.clients.push(client);
  await client.waitForText(/\$ /, 30_000).catch((error: unknown) => {
    throw new Error(`${String(error)}; events: ${JSON.stringify(client.events)}`);
  });
  return client;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

beforeAll(async () => {
  server = await HomeTestServer.start({
    homeSizeBytes: 64 * MiB,
    config: { sandbox: { graceS: 5, ...limits } },
  });
  alice = await server.user('alice');
  bob = await server.user('bob');
  admin = await server.user('root', { admin: true });
  attacker = await openShell(alice);
  victim = await openShell(bob);
  await inside(alice, 'echo precious > ~/keep.txt');
  await inside(bob, 'echo bobs > ~/bob.txt');
}, 120_000);

afterAll(async () => {
  await server?.destroy();
}, 120_000);

describe('container abuse (C) with the production HostConfig', () => {
  it('C01 a fork bomb hits the pids limit ("Resource temporarily unavailable"), stays in its cgroup, and the shell recovers', async () => {
    const { id } = await containerOf(alice);
    let peak = 0;
    const echoes = await whileProbing('C01 fork bomb', async () => {
      // Stops itself once /tmp/stop exists: `: >` is a builtin, so the shell can set it at the limit.
      attacker.send('(f(){ [ -e /tmp/stop ] && return; f|f& }; f) 2>/tmp/bomb.err\r');
      await until(() => {
        peak = Math.max(peak, Number(cgroupFile('pids', id, 'pids.current')));
        return (
          /max (\d+)/.test(cgroupFile('pids', id, 'pids.events')) &&
          Number(/max (\d+)/.exec(cgroupFile('pids', id, 'pids.events'))?.[1]) > 0
        );
      }, 'the pids limit to be hit');
      await sleep(2000);
      attacker.send(': > /tmp/stop\r');
      await until(() => Number(cgroupFile('pids', id, 'pids.current')) < 10, 'the bomb to die out', 60_000);
    });
    expect(cgroupFile('pids', id, 'pids.max')).toBe(String(limits.pidsLimit));
    expect(peak).toBeLessThanOrEqual(limits.pidsLimit);
    expect(
      await inside(alice, 'grep -c "Resource temporarily unavailable" /tmp/bomb.err; rm -f /tmp/stop'),
    ).toMatch(/[1-9]\d*/);
    expect(await inside(alice, 'echo $((40+2)); cat ~/keep.txt')).toMatch(/42\s+precious/);
    expect(echoes, 'Bob echoed during the attack').toBeGreaterThan(0);
  }, 120_000);

  it('C02 a memory hog is OOM-killed inside its cgroup, the user is told, $HOME is intact, Bob unaffected', async () => {
    const echoes = await whileProbing('C02 memory hog', async () => {
      const out = await inside(alice, `python3 -c "x=[b'x'*(1<<24) for _ in range(1000)]"; echo exit=$?`);
      expect(out).toContain('exit=137');
    });
    await attacker.waitFor(
      () => attacker.events.some((e) => e.type === 'notice' && /out of memory/.test(e.message)),
      'the out-of-memory notice',
      20_000,
    );
    // The user is told what happened, in words (not a code or a bare signal number).
    const notice = attacker.events.find((e) => e.type === 'notice' && /out of memory/.test(e.message));
    expect(notice?.type === 'notice' && notice.message).toMatch(
      /^(A process in your environment was stopped because it ran out of memory\.|Your environment stopped \(out of memory\)\. Restart it to continue; your home is kept\.)$/,
    );
    const { id } = await containerOf(alice);
    expect(
      Number(/oom_kill (\d+)/.exec(cgroupFile('memory', id, 'memory.oom_control'))?.[1]),
    ).toBeGreaterThan(0);
    expect(cgroupFile('memory', id, 'memory.limit_in_bytes')).toBe(String(limits.memoryBytes));
    expect(await inside(alice, 'cat ~/keep.txt')).toContain('precious');
    expect(echoes, 'Bob echoed during the attack').toBeGreaterThan(0);
  }, 120_000);

  it('C03 sixteen `yes` processes stay within the CPU quota, and Bob still echoes', async () => {
    const { id } = await containerOf(alice);
    let cpus = 0;
    const echoes = await whileProbing('C03 CPU hog', async () => {
      attacker.send('for i in $(seq 16); do (yes > /dev/null &); done\r');
      await until(() => Number(cgroupFile('pids', id, 'pids.current')) >= 16, 'the yes processes');
      await sleep(1000);
      const before = Number(cgroupFile('cpuacct', id, 'cpuacct.usage'));
      const started = process.hrtime.bigint();
      await sleep(3000);
      const used = Number(cgroupFile('cpuacct', id, 'cpuacct.usage')) - before;
      cpus = used / Number(process.hrtime.bigint() - started);
    });
    console.log(`C03 CPU hog: the container used ${cpus.toFixed(2)} CPUs (quota ${limits.cpuMillis / 1000})`);
    await inside(alice, 'pkill yes; true');
    expect(cpus).toBeGreaterThan(0.1);
    expect(cpus).toBeLessThan((limits.cpuMillis / 1000) * 1.25);
    expect(echoes, 'Bob echoed during the attack').toBeGreaterThan(0);
  }, 120_000);

  it('C04 filling $HOME stops with ENOSPC at the volume size (blocks and inodes), others unaffected, deleting restores', async () => {
    const size = Number((await inside(alice, 'df -B1 --output=size ~ | tail -1')).trim());
    // The quota is the home volume's own size, not something the app counts.
    expect(size).toBeLessThanOrEqual(64 * MiB);
    expect(size).toBeGreaterThan(40 * MiB); // ext4's journal and inode tables take the rest
    expect(await inside(alice, 'stat -f -c %T ~')).toContain('ext2/ext3');
    const echoes = await whileProbing('C04 disk fill', async () => {
      expect(
        await inside(alice, 'dd if=/dev/zero of=~/big bs=1M 2>&1 | grep -o "No space left on device"'),
      ).toContain('No space left on device');
      const inodes = await inside(
        alice,
        'rm -f ~/big; for i in $(seq 100000); do : > ~/f$i || { echo stopped-at-$i; break; }; done 2>&1 | tail -2',
      );
      expect(inodes).toMatch(/No space left on device[\s\S]*stopped-at-\d+/);
    });
    expect(await inside(bob, 'echo more >> ~/bob.txt && cat ~/bob.txt')).toContain('more');
    expect(
      await inside(alice, 'rm -rf ~/f*; echo fresh > ~/after.txt && cat ~/after.txt ~/keep.txt'),
    ).toMatch(/fresh\s+precious/);
    expect(echoes, 'Bob echoed during the attack').toBeGreaterThan(0);
  }, 240_000);

  it('C05 the root filesystem is read-only, /tmp is size-capped, and PID 1 output is rotated', async () => {
    const ro = await inside(alice, 'touch /usr/x /var/x /etc/x 2>&1; echo done');
    expect(ro.match(/Read-only file system/g)?.length).toBe(3);
    expect(Number((await inside(alice, 'df -B1 --output=size /tmp | tail -1')).trim())).toBe(
      limits.tmpSizeBytes,
    );
    expect(
      await inside(
        alice,
        'dd if=/dev/zero of=/tmp/fill bs=1M 2>&1 | grep -o "No space left on device"; rm -f /tmp/fill',
      ),
    ).toContain('No space left on device');
    const { inspect } = await containerOf(alice);
    const hostConfig = inspect.HostConfig as { LogConfig: { Type: string; Config: Record<string, string> } };
    expect(hostConfig.LogConfig).toEqual({
      Type: 'json-file',
      Config: { 'max-size': '1m', 'max-file': '1' },
    });
    // PID 1 runs as the user, so its stdout is theirs to flood: the engine's log must not grow past the cap.
    await inside(alice, "head -c 6000000 /dev/zero | tr '\\0' x | fold -w 200 > /proc/1/fd/1");
    const logPath = (await containerOf(alice)).inspect.LogPath as string;
    expect(statSync(logPath).size).toBeLessThan(1.5 * MiB);
  }, 120_000);
});

describe('tenant isolation inside the container (I03)', () => {
  it('I03 mount, /proc/mounts, df and ls show only Alice’s home: no other volumes, no host paths, no user names', async () => {
    const out = await inside(
      alice,
      `mount; echo ---; cat /proc/mounts; echo ---; df -a; echo ---; ls -a /home /mnt /var/lib; echo ---; find / -xdev -name '*${bob.username}*' 2>/dev/null | head; find / -xdev -name '*${bob.id}*' 2>/dev/null | head`,
    );
    for (const secret of [bob.username, bob.id, alice.username, alice.id])
      expect(
        out.split('\n').filter((line) => line.includes(secret)),
        secret,
      ).toEqual([]);
    // Known: the kernel names a loop mount by its backing file, so `mount` shows the path of
    // Alice's own home image on the host (a hash, no user name). Nothing else of the host shows.
    const hostLines = out.split('\n').filter((line) => line.includes(server.dataDir));
    for (const line of hostLines)
      expect(line).toMatch(/\/homes\/images\/[0-9a-f]{32}\.ext4 on \/home\/cloudshell-user /);
    const mounts = out.split('---')[1] ?? '';
    const mountPoints = mounts
      .split('\n')
      .map((line) => line.split(' ')[1] ?? '')
      .filter(Boolean);
    const homeMounts = mountPoints.filter((p) => p.startsWith('/home'));
    expect(homeMounts).toEqual(['/home/cloudshell-user']);
    expect(
      mountPoints.filter(
        (p) => p.startsWith('/mnt') || p.startsWith('/var/lib') || p.includes('docker.sock'),
      ),
    ).toEqual([]);
    const listing = out.split('---')[3] ?? '';
    expect(listing).toMatch(/\/home:\s+\.\s+\.\.\s+cloudshell-user/);
    // Bob's home never moved: his probe file is still there.
    expect(await inside(bob, 'cat ~/bob.txt')).toContain('bobs');
  }, 120_000);
});

describe('admin takes access away (A06, real container)', () => {
  it('A06 disabling Alice closes her socket with 4401 and stops her container; her home is kept', async () => {
    const patch = await server.request(admin, 'PATCH', `/api/admin/users/${alice.id}`, { disabled: true });
    expect(patch.statusCode, patch.body).toBe(200);
    expect((await attacker.closed).code).toBe(CloseCode.notAuthenticated);
    await until(
      async () =>
        (await server.app.environments.status({ ownerId: alice.id, region: regionA })).state !== 'running',
      'the container to stop',
      60_000,
    );
    const { inspect } = await containerOf(alice);
    expect((inspect.State as { Running: boolean }).Running).toBe(false);
    expect(await server.volumes.exists({ ownerId: alice.id, region: regionA })).toBe(true);
    expect((await server.request(alice, 'GET', '/api/me')).statusCode).toBe(401);
    const audit = await server.store.audit.list({ action: 'admin.user.disable' });
    expect(audit.some((e) => e.target === `user:${alice.id}`)).toBe(true);
    // Re-enabled, she finds her file again.
    await server.request(admin, 'PATCH', `/api/admin/users/${alice.id}`, { disabled: false });
    const { token } = await server.app.sessions.create(alice.id, 'full');
    alice.cookie = `cove_session=${token}`;
    const back = await openShell(alice);
    back.close();
    expect(await inside(alice, 'cat ~/keep.txt')).toContain('precious');
    expect(await inside(bob, 'cat ~/bob.txt')).toContain('bobs');
    expect((await server.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  }, 120_000);
});
