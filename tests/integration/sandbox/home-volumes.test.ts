import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HomeVolumeError,
  LoopHomeVolumes,
  formatBytes,
  mountedPaths,
} from '../../../sandbox/homes/home-volumes.js';

const MiB = 1024 ** 2;
let root: string;
let homes: LoopHomeVolumes;
const alice = { ownerId: 'user-alice-0001', region: 'eu-west-1' };
const bob = { ownerId: 'user-bob-0002', region: 'eu-west-1' };

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'cove-homes-'));
  homes = new LoopHomeVolumes({ root, reserveBytes: 0 });
});

afterAll(async () => {
  for (const key of [alice, bob, { ...alice, region: 'us-east-1' }])
    await homes.delete(key).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

/**
 * Runs a shell command as the environment user (uid 1000), like the container does. On the host
 * the homes' parent folders are root-only (0700); the container reaches its home through a bind
 * mount, so only this test needs a way through them.
 */
const asUser = (command: string) => {
  chmodSync(root, 0o711);
  chmodSync(join(root, 'mnt'), 0o711);
  return execFileSync('setpriv', ['--reuid=1000', '--regid=1000', '--clear-groups', 'sh', '-c', command], {
    encoding: 'utf8',
  });
};

describe('LoopHomeVolumes on real loop mounts', () => {
  it('creates a sparse ext4 home owned by uid 1000 and mounts it once, even under concurrent calls', async () => {
    const [a, b] = await Promise.all([homes.ensure(alice, 64 * MiB), homes.ensure(alice, 64 * MiB)]);
    expect(a.hostPath).toBe(b.hostPath);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[4] === a.hostPath);
    expect(mounts).toHaveLength(1);
    expect(statSync(a.hostPath).uid).toBe(1000);
    // sparse: the 64 MiB image uses far less on the host
    const image = statSync(homes.imagePath(alice));
    expect(image.size).toBe(64 * MiB);
    expect(image.blocks * 512).toBeLessThan(32 * MiB);
    expect(asUser(`ls -A ${a.hostPath}`)).not.toContain('lost+found');
  });

  it('stops writes at the size limit with ENOSPC, and frees space at once on delete', async () => {
    const { hostPath } = await homes.ensure(alice, 64 * MiB);
    let message = '';
    try {
      asUser(`dd if=/dev/zero of=${hostPath}/big bs=1M count=200 2>&1`);
    } catch (error) {
      message = String((error as { stdout?: string }).stdout ?? error);
    }
    expect(message).toMatch(/No space left on device/);
    const full = await homes.usage(alice);
    expect(full?.freeBytes).toBeLessThan(MiB);
    asUser(`rm ${hostPath}/big`);
    const freed = await homes.usage(alice);
    expect(freed?.freeBytes).toBeGreaterThan(50 * MiB);
    expect(freed?.totalBytes).toBeGreaterThan(50 * MiB);
  });

  it('keeps data across unmount and remount (a server restart or host reboot)', async () => {
    const { hostPath } = await homes.ensure(alice, 64 * MiB);
    asUser(`echo kept > ${hostPath}/note.txt`);
    await homes.unmount(alice);
    expect(await homes.isMounted(alice)).toBe(false);
    expect(await homes.remountAll()).toBeGreaterThanOrEqual(1);
    expect(readFileSync(join(hostPath, 'note.txt'), 'utf8')).toBe('kept\n');
  });

  it('keeps homes of different users and regions apart', async () => {
    const a = await homes.ensure(alice, 64 * MiB);
    const b = await homes.ensure(bob, 64 * MiB);
    const otherRegion = await homes.ensure({ ...alice, region: 'us-east-1' }, 64 * MiB);
    expect(new Set([a.hostPath, b.hostPath, otherRegion.hostPath]).size).toBe(3);
    writeFileSync(join(a.hostPath, 'only-alice'), 'x');
    expect(asUser(`ls -A ${b.hostPath}`)).not.toContain('only-alice');
    expect(asUser(`ls -A ${otherRegion.hostPath}`)).not.toContain('only-alice');
    // names carry ids, never a display name
    expect(a.hostPath).toContain('user-alice-0001');
    expect((await homes.list()).map((h) => h.ownerId).sort()).toEqual(
      [alice.ownerId, alice.ownerId, bob.ownerId].sort(),
    );
  });

  it('deletes a home completely: unmounted, detached, file gone', async () => {
    const { hostPath } = await homes.ensure(bob, 64 * MiB);
    await homes.delete(bob);
    expect((await mountedPaths()).has(hostPath)).toBe(false);
    expect(await homes.exists(bob)).toBe(false);
    expect(execFileSync('losetup', ['-a'], { encoding: 'utf8' })).not.toContain(homes.imagePath(bob));
    const again = await homes.ensure(bob, 64 * MiB);
    expect(again.created).toBe(true);
    expect(asUser(`ls -A ${again.hostPath}`).trim()).toBe('');
  });

  it('refuses a new home with a capacity error when the host cannot hold it, touching nothing', async () => {
    const tight = new LoopHomeVolumes({ root, reserveBytes: 1024 ** 5 });
    const carol = { ownerId: 'user-carol-0003', region: 'eu-west-1' };
    const failure = await tight.ensure(carol, 64 * MiB).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(HomeVolumeError);
    expect((failure as HomeVolumeError).reason).toBe('capacity');
    expect((failure as HomeVolumeError).message).toMatch(/out of space for new homes/);
    expect(await tight.exists(carol)).toBe(false);
    expect(await homes.isMounted(alice)).toBe(true);
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [212_000_000, '212 MB'],
    [1_073_741_824, '1.1 GB'],
    [1_000_000_000, '1.0 GB'],
    [5_500_000, '5.5 MB'],
  ])('%d → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});
