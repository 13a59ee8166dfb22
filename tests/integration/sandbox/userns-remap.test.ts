/**
 * userns-remap, tested without touching the main engine: a second dockerd of its own
 * (tests/helpers/second-dockerd.ts: its own socket, data root, exec root, pid file, containerd
 * namespaces and bridge, no iptables) with `--userns-remap default`, the debootstrapped base image
 * loaded into it, and a container run with Cove's hardening on a loop home made by LoopHomeVolumes
 * for the mapped uid (101000). Everything it starts is stopped and removed in afterAll.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoopHomeVolumes, mountedPaths } from '../../../sandbox/homes/home-volumes.js';
import { startSecondDockerd, type SecondDockerd } from '../../helpers/second-dockerd.js';

const run = promisify(execFile);
const RUN = randomBytes(3).toString('hex');
const DIR = `/tmp/cove-userns-${RUN}`;
// No packets use the engine's bridge: the test's containers run with --network none.
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

let engine: SecondDockerd | undefined;
let homes: LoopHomeVolumes;
const homeKey = { ownerId: `userns-${RUN}`, region: 'us-east-1' };
let homePath = '';

const remapped = (...args: string[]) => {
  if (!engine) throw new Error('the second engine did not start');
  return engine.cli(...args);
};

async function hostUidOf(container: string): Promise<string> {
  const pid = (await remapped('inspect', '-f', '{{.State.Pid}}', container)).stdout.trim();
  // The container's main process is docker-init; its child runs the command as the same user.
  const uidLine = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((line) => line.startsWith('Uid:'));
  return uidLine?.split(/\s+/)[1] ?? '';
}

beforeAll(async () => {
  engine = await startSecondDockerd({
    name: `cove-userns-${RUN}`,
    dir: join(DIR, 'engine'),
    bridge: BRIDGE,
    bridgeAddress: BRIDGE_ADDRESS,
    extraArgs: ['--userns-remap', 'default'],
  });
  // Remapped engines keep separate, empty image storage: bring the base image over.
  await run('bash', [
    '-c',
    `set -o pipefail; ${DOCKER} save ${BASE_IMAGE} | ${DOCKER} -H ${engine.host} load -q`,
  ]);

  homes = new LoopHomeVolumes({ root: join(DIR, 'homes'), ownerUid: MAPPED_UID, reserveBytes: 0 });
  homePath = (await homes.ensure(homeKey, 64 * 1024 * 1024)).hostPath;
}, 180_000);

afterAll(async () => {
  // A failed stop is reported after the rest is cleaned up.
  const stopError = await engine?.stop().then(
    () => undefined,
    (error: unknown) => error,
  );
  if (homes) await homes.delete(homeKey).catch(() => undefined);
  // The home's mount, if deleting it failed.
  const mounts = [...(await mountedPaths())].filter((path) => path.startsWith(`${DIR}/`));
  for (const mount of mounts.sort((a, b) => b.length - a.length))
    await run('umount', ['-l', mount]).catch(() => undefined);
  rmSync(DIR, { recursive: true, force: true });
  if (stopError) throw stopError;
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
