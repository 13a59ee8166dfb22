/**
 * userns-remap, tested without touching the main engine: a second dockerd of its own (socket,
 * data root, exec root, pid file, containerd namespaces, no bridge, no iptables) with
 * `--userns-remap default`, the debootstrapped base image loaded into it, and a container run
 * with Cove's hardening on a loop home made by LoopHomeVolumes for the mapped uid (101000).
 * Everything it starts is stopped and removed in afterAll.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoopHomeVolumes } from '../../../sandbox/home-volumes.js';

const run = promisify(execFile);
const RUN = randomBytes(3).toString('hex');
const DIR = `/tmp/cove-userns-${RUN}`;
const SOCKET = `unix://${DIR}/docker.sock`;
// The second engine gets a bridge of its own. `--bridge none` would be simpler but makes dockerd
// delete the host's docker0 at start (it shares the host's network namespace with the main
// engine), which breaks every container the main engine starts afterwards. No packets use it:
// the test's containers run with --network none and this engine has iptables off.
const BRIDGE = `cove-uns-${RUN}`;
const BRIDGE_ADDRESS = '10.213.251.1/30';
const DOCKER = '/usr/bin/docker';
const BASE_IMAGE = 'cove/debian-base:bookworm';
const MAPPED_UID = 101000;
const HARDENING = [
  '--init',
  '--cap-drop',
  'ALL',
  '--security-opt',
  'no-new-privileges:true',
  '--read-only',
  '--tmpfs',
  '/tmp:rw,nosuid,nodev,size=16m,mode=1777',
  '--pids-limit',
  '64',
  '--memory',
  '128m',
  '--memory-swap',
  '128m',
  '--network',
  'none',
];

let dockerd: ChildProcess | undefined;
let homes: LoopHomeVolumes;
const homeKey = { ownerId: `userns-${RUN}`, region: 'us-east-1' };
let homePath = '';

const remapped = (...args: string[]) => run(DOCKER, ['-H', SOCKET, ...args], { maxBuffer: 16 * 1024 * 1024 });

async function hostUidOf(container: string): Promise<string> {
  const pid = (await remapped('inspect', '-f', '{{.State.Pid}}', container)).stdout.trim();
  // The container's main process is docker-init; its child runs the command as the same user.
  const uidLine = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((line) => line.startsWith('Uid:'));
  return uidLine?.split(/\s+/)[1] ?? '';
}

beforeAll(async () => {
  mkdirSync(DIR, { recursive: true });
  await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await run('ip', ['addr', 'add', BRIDGE_ADDRESS, 'dev', BRIDGE]);
  writeFileSync(join(DIR, 'daemon.json'), '{}\n'); // not the main engine's daemon.json
  const log = openSync(join(DIR, 'dockerd.log'), 'a');
  dockerd = spawn(
    '/usr/sbin/dockerd',
    [
      '--config-file',
      join(DIR, 'daemon.json'),
      '--host',
      SOCKET,
      '--data-root',
      join(DIR, 'data'),
      '--exec-root',
      join(DIR, 'exec'),
      '--pidfile',
      join(DIR, 'docker.pid'),
      '--userns-remap',
      'default',
      '--bridge',
      BRIDGE,
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--containerd-namespace',
      `cove-userns-${RUN}`,
      '--containerd-plugins-namespace',
      `cove-userns-${RUN}-plugins`,
    ],
    { stdio: ['ignore', log, log] },
  );
  for (let i = 0; ; i++) {
    if (
      await remapped('version').then(
        () => true,
        () => false,
      )
    )
      break;
    if (i > 120 || dockerd.exitCode !== null) {
      throw new Error(
        `second dockerd did not start:\n${readFileSync(join(DIR, 'dockerd.log'), 'utf8').slice(-2000)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  // Remapped engines keep separate, empty image storage: bring the base image over.
  await run('bash', ['-c', `${DOCKER} save ${BASE_IMAGE} | ${DOCKER} -H ${SOCKET} load -q`]);

  homes = new LoopHomeVolumes({ root: join(DIR, 'homes'), ownerUid: MAPPED_UID, reserveBytes: 0 });
  homePath = (await homes.ensure(homeKey, 64 * 1024 * 1024)).hostPath;
}, 180_000);

afterAll(async () => {
  if (dockerd && dockerd.exitCode === null) {
    const ids = (await remapped('ps', '-aq').catch(() => ({ stdout: '' }))).stdout
      .trim()
      .split('\n')
      .filter(Boolean);
    if (ids.length > 0) await remapped('rm', '-f', ...ids).catch(() => undefined);
    dockerd.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        dockerd?.kill('SIGKILL');
        resolve();
      }, 20_000);
      dockerd?.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  if (homes) await homes.delete(homeKey).catch(() => undefined);
  // Whatever the engine left mounted under its roots (it unmounts on a clean stop).
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((path) => path.startsWith(DIR))
    .sort((a, b) => b.length - a.length);
  for (const mount of mounts) await run('umount', ['-l', mount]).catch(() => undefined);
  rmSync(DIR, { recursive: true, force: true });
  await run('ip', ['link', 'del', BRIDGE]).catch(() => undefined);
}, 60_000);

describe('userns-remap (a second engine)', () => {
  it('C08 uid 1000 inside is 101000 on the host, root inside is 100000, and the 101000-owned home is writable', async () => {
    expect(statSync(homePath).uid).toBe(MAPPED_UID);
    const name = `cove-userns-${RUN}`;
    await remapped(
      'run',
      '-d',
      '--name',
      name,
      ...HARDENING,
      '--user',
      '1000:1000',
      '--mount',
      `type=bind,source=${homePath},target=/home/cloudshell-user`,
      BASE_IMAGE,
      'sleep',
      '300',
    );
    expect((await remapped('exec', name, 'id', '-u')).stdout.trim()).toBe('1000');
    expect(await hostUidOf(name)).toBe(String(MAPPED_UID));
    expect((await remapped('exec', name, 'cat', '/proc/self/uid_map')).stdout.trim().split(/\s+/)).toEqual([
      '0',
      '100000',
      '65536',
    ]);

    await remapped(
      'exec',
      name,
      'sh',
      '-c',
      'echo hi > /home/cloudshell-user/written && cat /home/cloudshell-user/written',
    );
    const written = join(homePath, 'written');
    expect(existsSync(written)).toBe(true);
    expect(statSync(written).uid).toBe(MAPPED_UID);
    expect(readFileSync(written, 'utf8')).toBe('hi\n');

    const rootName = `cove-userns-root-${RUN}`;
    await remapped(
      'run',
      '-d',
      '--name',
      rootName,
      ...HARDENING,
      '--user',
      '0:0',
      BASE_IMAGE,
      'sleep',
      '300',
    );
    expect((await remapped('exec', rootName, 'id', '-u')).stdout.trim()).toBe('0');
    expect(await hostUidOf(rootName)).toBe('100000');
    // Root inside still cannot write the user's files it was not given, nor the read-only root.
    const probe = await remapped('exec', rootName, 'sh', '-c', 'touch /etc/x 2>&1; echo rc=$?');
    expect(probe.stdout).toMatch(/Read-only file system[\s\S]*rc=1/);
  });

  it('C08 refuses --privileged under remap; --userns=host would undo it (Cove never passes it)', async () => {
    const refused = await remapped('run', '--rm', '--privileged', BASE_IMAGE, 'true').then(
      () => 'started',
      (error: { stderr?: string }) => error.stderr ?? 'refused',
    );
    expect(refused).toMatch(/privileged|user namespaces/i);
  });
});
