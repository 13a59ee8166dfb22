/** Home volumes in memory for unit tests: records calls, fails on demand, reports set usage. */
import type { HomeVolumes } from '../../../../server/homes/home-service.js';
import {
  HomeVolumeError,
  type EnvironmentKey,
  type HomeErrorReason,
  type HomeInfo,
} from '../../../../sandbox/index.js';

const MiB = 1024 ** 2;

export class FakeHomeVolumes implements HomeVolumes {
  readonly sizes: number[] = [];
  failWith: HomeErrorReason | undefined;
  mounted = true;
  homes = new Map<string, HomeInfo>();
  usedBytes = 10 * MiB;
  /** Every call in order, shared with a fake driver's log when the test wants one timeline. */
  log: string[] = [];

  async ensure(key: EnvironmentKey, sizeBytes: number) {
    if (this.failWith)
      throw new HomeVolumeError(this.failWith, `internal detail /srv/cove/homes (${this.failWith})`);
    this.sizes.push(sizeBytes);
    this.log.push(`home.ensure ${key.region}/${key.ownerId}`);
    this.homes.set(key.ownerId + key.region, { ...key, sizeBytes, createdAt: 1, lastUsedAt: 1_000 });
    const hostPath = `/srv/homes/mnt/${key.region}_${key.ownerId}`;
    return { hostPath, home: { kind: 'host-directory' as const, path: hostPath }, created: true };
  }
  async isMounted() {
    return this.mounted;
  }
  async usage() {
    return this.mounted
      ? { usedBytes: this.usedBytes, totalBytes: 90 * MiB, freeBytes: 90 * MiB - this.usedBytes }
      : undefined;
  }
  async info(key: EnvironmentKey) {
    return this.homes.get(key.ownerId + key.region);
  }
  async list() {
    return [...this.homes.values()];
  }
  async delete(key: EnvironmentKey) {
    this.log.push(`home.delete ${key.region}/${key.ownerId}`);
    this.homes.delete(key.ownerId + key.region);
  }
  async markUsed() {}
  async remountAll() {
    return 0;
  }
}
