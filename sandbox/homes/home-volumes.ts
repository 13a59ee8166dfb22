/**
 * Persistent homes: one ext4 filesystem in a sparse file per (owner, region), loop-mounted on the
 * host and bind-mounted into the environment at /home/cloudshell-user. The filesystem is the
 * quota: writing past it fails with ENOSPC inside the container and nothing else is affected.
 *
 * Layout under `root` (names derive from immutable ids only, never from user names):
 *   images/<digest>.ext4 the filesystem image (sparse), named by a digest of the slug
 *   mnt/<slug>/          its mount point
 *   meta/<slug>.json     owner, region, size and last use (survives unmounts and restarts)
 *
 * Needs root on the host (mkfs, mount). Every operation is idempotent and single-flight per key.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, rmdir, stat, statfs, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hostDirectory } from '../host-directory.js';
import type { EnvironmentKey, HomeRef } from '../sandbox-driver.js';
import { safeSlug } from '../names.js';

const run = promisify(execFile);

/** `<region>_<owner>` from immutable ids; `_` keeps `eu-west`+`1-x` apart from `eu-west-1`+`x`. */
export function homeSlug(key: EnvironmentKey): string {
  return `${safeSlug(key.region, 40)}_${safeSlug(key.ownerId, 63)}`;
}

export interface HomeVolumeOptions {
  /** Directory holding images/, mnt/ and meta/ (e.g. `<dataDir>/homes`). */
  readonly root: string;
  /** Host uid that owns the home: 1000, or the mapped uid under userns-remap (e.g. 101000). */
  readonly ownerUid?: number;
  /** Free space the host must keep after a new home is created (default 1 GiB). */
  readonly reserveBytes?: number;
  readonly now?: () => number;
}

export interface HomeUsage {
  readonly usedBytes: number;
  readonly totalBytes: number;
  readonly freeBytes: number;
}

export interface HomeInfo extends EnvironmentKey {
  readonly sizeBytes: number;
  readonly createdAt: number;
  readonly lastUsedAt: number;
}

export type HomeErrorReason = 'capacity' | 'not-root' | 'mount-failed' | 'busy';

/** A home operation that failed for a reason the caller can explain to the user. */
export class HomeVolumeError extends Error {
  constructor(
    readonly reason: HomeErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HomeVolumeError';
  }
}

interface Meta extends HomeInfo {
  readonly slug: string;
}

/** Mount points currently mounted, read from the kernel (not from our own bookkeeping). */
export async function mountedPaths(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const paths = new Set<string>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    // mountinfo escapes spaces and the like as octal (\040).
    if (field)
      paths.add(field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return paths;
}

export class LoopHomeVolumes {
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly ownerUid: number;
  private readonly reserveBytes: number;
  private readonly now: () => number;

  constructor(private readonly options: HomeVolumeOptions) {
    this.ownerUid = options.ownerUid ?? 1000;
    this.reserveBytes = options.reserveBytes ?? 1024 ** 3;
    this.now = options.now ?? Date.now;
  }

  /**
   * Named by a digest of the slug: a container can read every loop device's backing file name in
   * /sys/block/loop*, so these names must not carry ids (the mount point's name never shows).
   */
  imagePath(key: EnvironmentKey): string {
    const digest = createHash('sha256')
      .update(`cove-home\u0000${homeSlug(key)}`)
      .digest('hex')
      .slice(0, 32);
    return join(this.options.root, 'images', `${digest}.ext4`);
  }

  mountPath(key: EnvironmentKey): string {
    return join(this.options.root, 'mnt', homeSlug(key));
  }

  private metaPath(slug: string): string {
    return join(this.options.root, 'meta', `${slug}.json`);
  }

  /**
   * Creates (first use) and mounts the home; returns the host path to bind-mount. Touches the
   * last-use time, best effort: a home that is there and mounted is usable even when the host's
   * disk is too full to record the time (then `lastUseError` says why, for the caller's log).
   * Safe to call concurrently and repeatedly: a home is never mounted twice.
   */
  ensure(
    key: EnvironmentKey,
    sizeBytes: number,
  ): Promise<{ hostPath: string; home: HomeRef; created: boolean; lastUseError?: unknown }> {
    return this.singleFlight(key, async () => {
      const image = this.imagePath(key);
      const mountPoint = this.mountPath(key);
      let created = false;
      if (!(await exists(image))) {
        await this.create(key, sizeBytes);
        created = true;
      }
      if (!(await mountedPaths()).has(mountPoint)) await this.mount(image, mountPoint);
      try {
        await this.touch(key, sizeBytes);
      } catch (error) {
        return { hostPath: mountPoint, home: hostDirectory(mountPoint), created, lastUseError: error };
      }
      return { hostPath: mountPoint, home: hostDirectory(mountPoint), created };
    });
  }

  /** True when the home's filesystem is mounted right now. */
  async isMounted(key: EnvironmentKey): Promise<boolean> {
    return (await mountedPaths()).has(this.mountPath(key));
  }

  async exists(key: EnvironmentKey): Promise<boolean> {
    return exists(this.imagePath(key));
  }

  /** Usage as the filesystem reports it (statfs), or undefined when the home is not mounted. */
  async usage(key: EnvironmentKey): Promise<HomeUsage | undefined> {
    const mountPoint = this.mountPath(key);
    if (!(await mountedPaths()).has(mountPoint)) return undefined;
    const fs = await statfs(mountPoint);
    const totalBytes = fs.blocks * fs.bsize;
    const freeBytes = fs.bavail * fs.bsize;
    return { totalBytes, freeBytes, usedBytes: totalBytes - fs.bfree * fs.bsize };
  }

  async info(key: EnvironmentKey): Promise<HomeInfo | undefined> {
    const meta = await this.readMeta(homeSlug(key));
    return (
      meta && {
        ownerId: meta.ownerId,
        region: meta.region,
        sizeBytes: meta.sizeBytes,
        createdAt: meta.createdAt,
        lastUsedAt: meta.lastUsedAt,
      }
    );
  }

  /** Every home on this host, mounted or not. */
  async list(): Promise<HomeInfo[]> {
    const dir = join(this.options.root, 'meta');
    const names = await readdir(dir).catch(() => [] as string[]);
    const metas = await Promise.all(
      names.filter((n) => n.endsWith('.json')).map((n) => this.readMeta(n.slice(0, -5))),
    );
    return metas
      .filter((m): m is Meta => m !== undefined)
      .map((m) => ({
        ownerId: m.ownerId,
        region: m.region,
        sizeBytes: m.sizeBytes,
        createdAt: m.createdAt,
        lastUsedAt: m.lastUsedAt,
      }));
  }

  /** Unmounts (the environment must be gone first), keeping the data. */
  unmount(key: EnvironmentKey): Promise<void> {
    return this.singleFlight(key, async () => {
      const mountPoint = this.mountPath(key);
      if (!(await mountedPaths()).has(mountPoint)) return;
      try {
        await run('umount', [mountPoint]);
      } catch (error) {
        throw new HomeVolumeError('busy', 'The home is still in use; stop its environment first.', {
          cause: error,
        });
      }
    });
  }

  /** Unmounts, detaches and deletes the home and its data for good. */
  delete(key: EnvironmentKey): Promise<void> {
    return this.singleFlight(key, async () => {
      const mountPoint = this.mountPath(key);
      if ((await mountedPaths()).has(mountPoint)) {
        try {
          await run('umount', [mountPoint]);
        } catch (error) {
          throw new HomeVolumeError('busy', 'The home is still in use; stop its environment first.', {
            cause: error,
          });
        }
      }
      await rmdir(mountPoint).catch(() => undefined);
      await rm(this.imagePath(key), { force: true });
      await rm(this.metaPath(homeSlug(key)), { force: true });
    });
  }

  /**
   * Mounts an existing home that is not mounted, without counting it as a use (a restart is not
   * the user's doing, so it must not push back the retention date). False when there is no home.
   */
  remount(key: EnvironmentKey): Promise<boolean> {
    return this.singleFlight(key, async () => {
      const image = this.imagePath(key);
      if (!(await exists(image))) return false;
      const mountPoint = this.mountPath(key);
      if (!(await mountedPaths()).has(mountPoint)) await this.mount(image, mountPoint);
      return true;
    });
  }

  /**
   * Mounts every existing home again, e.g. after a host reboot. Returns how many were mounted; a
   * home that fails goes to `onError` and the others are still mounted.
   */
  async remountAll(onError?: (key: EnvironmentKey, error: unknown) => void): Promise<number> {
    let count = 0;
    for (const home of await this.list()) {
      if (await this.isMounted(home)) continue;
      try {
        if (await this.remount(home)) count++;
      } catch (error) {
        if (!onError) throw error;
        onError({ ownerId: home.ownerId, region: home.region }, error);
      }
    }
    return count;
  }

  private async create(key: EnvironmentKey, sizeBytes: number): Promise<void> {
    if (typeof process.getuid === 'function' && process.getuid() !== 0)
      throw new HomeVolumeError('not-root', 'Creating homes needs root on the host (mkfs and mount).');
    for (const dir of ['images', 'mnt', 'meta'])
      await mkdir(join(this.options.root, dir), { recursive: true, mode: 0o700 });
    // Sparse files over-commit the disk: refuse when the host could not hold this home in full
    // plus a reserve. Existing homes may still grow into the reserve (documented in the README).
    const fs = await statfs(join(this.options.root, 'images'));
    const free = fs.bavail * fs.bsize;
    if (free < sizeBytes + this.reserveBytes)
      throw new HomeVolumeError(
        'capacity',
        `The host is out of space for new homes (${formatBytes(free)} free, ${formatBytes(sizeBytes + this.reserveBytes)} needed).`,
      );
    const image = this.imagePath(key);
    const partial = `${image}.partial`;
    try {
      await run('truncate', ['-s', String(sizeBytes), partial]);
      await run('mkfs.ext4', [
        '-q',
        '-F',
        '-m',
        '0',
        '-L',
        'cove-home',
        '-E',
        `root_owner=${this.ownerUid}:${this.ownerUid}`,
        partial,
      ]);
      await rename(partial, image);
    } catch (error) {
      await rm(partial, { force: true });
      if (error instanceof HomeVolumeError) throw error;
      throw new HomeVolumeError('mount-failed', 'Cove could not create your home filesystem.', {
        cause: error,
      });
    }
    const now = this.now();
    await this.writeMeta({
      slug: homeSlug(key),
      ownerId: key.ownerId,
      region: key.region,
      sizeBytes,
      createdAt: now,
      lastUsedAt: now,
    });
    // lost+found is root's and would show in the user's home; e2fsck recreates it when needed.
    await this.mount(image, this.mountPath(key));
    await rmdir(join(this.mountPath(key), 'lost+found')).catch(() => undefined);
  }

  private async mount(image: string, mountPoint: string): Promise<void> {
    await mkdir(mountPoint, { recursive: true, mode: 0o755 });
    // Still on a loop device although not mounted here: a container holds the filesystem after a
    // host-side unmount. A second mount would run two ext4 instances on one image and corrupt it.
    if (await stillAttached(image))
      throw new HomeVolumeError(
        'busy',
        'The home is still in use by an environment; remove that environment before mounting it again.',
      );
    try {
      await run('mount', ['-o', 'loop,nodev,nosuid', image, mountPoint]);
    } catch (error) {
      throw new HomeVolumeError('mount-failed', 'Cove could not mount your home filesystem.', {
        cause: error,
      });
    }
  }

  private async touch(key: EnvironmentKey, sizeBytes: number): Promise<void> {
    const slug = homeSlug(key);
    const meta = await this.readMeta(slug);
    const now = this.now();
    await this.writeMeta({
      slug,
      ownerId: key.ownerId,
      region: key.region,
      sizeBytes: meta?.sizeBytes ?? sizeBytes,
      createdAt: meta?.createdAt ?? now,
      lastUsedAt: now,
    });
  }

  /** Records use without mounting (a terminal is open, a file moved). */
  async markUsed(key: EnvironmentKey): Promise<void> {
    const meta = await this.readMeta(homeSlug(key));
    if (meta) await this.writeMeta({ ...meta, lastUsedAt: this.now() });
  }

  private async readMeta(slug: string): Promise<Meta | undefined> {
    try {
      return JSON.parse(await readFile(this.metaPath(slug), 'utf8')) as Meta;
    } catch {
      return undefined;
    }
  }

  private async writeMeta(meta: Meta): Promise<void> {
    await mkdir(join(this.options.root, 'meta'), { recursive: true, mode: 0o700 });
    const path = this.metaPath(meta.slug);
    try {
      await writeFile(`${path}.tmp`, JSON.stringify(meta));
    } catch (error) {
      // A full disk leaves a truncated temp file; the last good meta file stays as it was.
      await rm(`${path}.tmp`, { force: true }).catch(() => undefined);
      throw error;
    }
    await rename(`${path}.tmp`, path);
  }

  private singleFlight<T>(key: EnvironmentKey, fn: () => Promise<T>): Promise<T> {
    const id = homeSlug(key);
    const previous = this.inFlight.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    this.inFlight.set(id, next);
    void next
      .finally(() => {
        if (this.inFlight.get(id) === next) this.inFlight.delete(id);
      })
      .catch(() => undefined);
    return next;
  }
}

/** The kernel detaches an unmounted loop device a moment later (deferred autoclear): wait for it. */
async function stillAttached(image: string, waitMs = 1500): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const attached = await run('losetup', ['-j', image]).then(
      ({ stdout }) => stdout.trim() !== '',
      () => false,
    );
    if (!attached || Date.now() >= deadline) return attached;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** `212 MB`, `1 GB`: decimal units as people read them in a status line. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
