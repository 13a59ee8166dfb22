/**
 * Homes as the server sees them (`app.homes`): the loop-mounted volumes of sandbox/homes/home-volumes.ts
 * under `<dataDir>/homes`, with the size chosen per group and region, errors turned into coded
 * ones, and usage/expiry views for the pages. It is also the environments' `HomesProvider`: an
 * environment is only ever started on a home that is mounted right now, because Docker accepts
 * an unmounted mount point as a bind source without a word and the user would write into the
 * host's data directory instead of their home.
 *
 * Over-commit rule: images are sparse, so a new home is created only while the host's free space
 * (which already counts what existing images really use) covers the new home in full plus
 * `homes.reserveBytes`. Existing homes may then grow into that reserve; size it for how full the
 * homes get (the default 1 GiB reserve covers one home filling up entirely).
 *
 * Size: the largest `homeSizeBytes` among the user's groups, else the region's, else
 * `homes.sizeBytes`. It applies when a home is created; an existing home keeps its size.
 */
import { join, resolve } from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { errors, type CoveError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { HomesProvider } from '../environments/environment-service.js';
import type { AdminHome, HomeUsageView } from '../protocol/api.js';
import {
  HomeVolumeError,
  LoopHomeVolumes,
  type EnvironmentKey,
  type HomeInfo,
  type HomeRef,
  type HomeUsage,
} from '../../sandbox/index.js';

/** What the service needs from the volumes (LoopHomeVolumes; a fake in unit tests). */
export type HomeVolumes = Pick<
  LoopHomeVolumes,
  'ensure' | 'isMounted' | 'usage' | 'info' | 'list' | 'delete' | 'markUsed' | 'remountAll'
>;

const dayMs = 86_400_000;

export interface HomeServiceOptions {
  /** Absent: homes are disabled and environments get a throwaway home. */
  readonly volumes?: HomeVolumes;
  readonly config: Pick<Config, 'regions' | 'homes'>;
  readonly store: Pick<Store, 'groups' | 'users'>;
  readonly log: FastifyBaseLogger;
  readonly now?: () => number;
}

/** The coded error for a failed home operation; anything unexpected passes through unchanged. */
export function homeError(error: unknown): CoveError | unknown {
  if (!(error instanceof HomeVolumeError)) return error;
  switch (error.reason) {
    case 'capacity':
      return errors.homeCapacity(error);
    case 'not-root':
      return errors.homeNotSupported(error);
    case 'busy':
      return errors.homeBusy(error);
    case 'mount-failed':
      return errors.homeMountFailed(error);
  }
}

export class HomeService implements HomesProvider {
  private readonly now: () => number;

  constructor(private readonly options: HomeServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.options.volumes !== undefined;
  }

  get retentionMs(): number {
    return this.options.config.homes.retentionDays * dayMs;
  }

  expiresAt(lastUsedAt: number): number {
    return lastUsedAt + this.retentionMs;
  }

  /** The size a new home of this user in this region gets. */
  async sizeFor(key: EnvironmentKey): Promise<number> {
    const groups = await this.options.store.groups.groupsOf(key.ownerId);
    const groupSizes = groups
      .map((g) => g.homeSizeBytes)
      .filter((size): size is number => typeof size === 'number' && size > 0);
    if (groupSizes.length > 0) return Math.max(...groupSizes);
    const region = this.options.config.regions.find((r) => r.id === key.region);
    return region?.homeSizeBytes ?? this.options.config.homes.sizeBytes;
  }

  /** Creates (first use) and mounts the home; resolves only once it is mounted. */
  async ensure(key: EnvironmentKey): Promise<HomeRef> {
    const volumes = this.requireVolumes();
    try {
      const { hostPath, home, created, lastUseError } = await volumes.ensure(key, await this.sizeFor(key));
      // Only the retention clock is behind (a full disk); the home itself is ready.
      if (lastUseError !== undefined)
        this.options.log.warn(
          { err: lastUseError, ownerId: key.ownerId, region: key.region },
          'could not record the home last-use time',
        );
      if (!(await volumes.isMounted(key)))
        throw new HomeVolumeError('mount-failed', `home ${hostPath} is not mounted after ensure`);
      if (created) this.options.log.info({ ownerId: key.ownerId, region: key.region }, 'home created');
      return home;
    } catch (error) {
      this.options.log.warn({ err: error, ownerId: key.ownerId, region: key.region }, 'home not ready');
      throw homeError(error);
    }
  }

  /** Makes sure the home exists and is mounted, when homes are enabled (before a terminal opens). */
  async prepare(key: EnvironmentKey): Promise<void> {
    if (this.enabled) await this.ensure(key);
  }

  /** Mounts every existing home; run at start, before any environment is started or adopted. */
  async remountAll(): Promise<number> {
    if (!this.options.volumes) return 0;
    return this.options.volumes.remountAll((key, error) =>
      this.options.log.error(
        { err: error, ownerId: key.ownerId, region: key.region },
        'could not mount a home at start; its environment will not start until it mounts',
      ),
    );
  }

  async markUsed(key: EnvironmentKey): Promise<void> {
    await this.options.volumes?.markUsed(key);
  }

  async usage(key: EnvironmentKey): Promise<HomeUsage | undefined> {
    return this.options.volumes?.usage(key);
  }

  async info(key: EnvironmentKey): Promise<HomeInfo | undefined> {
    return this.options.volumes?.info(key);
  }

  async list(): Promise<HomeInfo[]> {
    return (await this.options.volumes?.list()) ?? [];
  }

  /** The page's view: null when there is no home (never used, deleted, or homes disabled). */
  async view(key: EnvironmentKey): Promise<HomeUsageView | null> {
    const info = await this.info(key);
    if (!info) return null;
    const usage = await this.usage(key);
    return {
      usedBytes: usage?.usedBytes ?? 0,
      totalBytes: usage?.totalBytes ?? info.sizeBytes,
      sizeBytes: info.sizeBytes,
      lastUsedAt: new Date(info.lastUsedAt).toISOString(),
      expiresAt: new Date(this.expiresAt(info.lastUsedAt)).toISOString(),
    };
  }

  /** Every home with its owner's name and usage, for the admin console. */
  async adminList(): Promise<AdminHome[]> {
    const [homes, users] = await Promise.all([this.list(), this.options.store.users.list()]);
    const names = new Map(users.map((u) => [u.id, u.username]));
    const rows = await Promise.all(
      homes.map(async (home) => {
        const usage = await this.usage(home).catch(() => undefined);
        return {
          userId: home.ownerId,
          username: names.get(home.ownerId) ?? null,
          region: home.region,
          sizeBytes: home.sizeBytes,
          usedBytes: usage?.usedBytes ?? null,
          lastUsedAt: new Date(home.lastUsedAt).toISOString(),
          expiresAt: new Date(this.expiresAt(home.lastUsedAt)).toISOString(),
        };
      }),
    );
    return rows.sort(
      (a, b) =>
        (a.username ?? '').localeCompare(b.username ?? '') ||
        a.userId.localeCompare(b.userId) ||
        a.region.localeCompare(b.region),
    );
  }

  /**
   * Deletes the home for good. The environment must already be gone (see HomeLifecycle, which
   * removes the container first under the environment's lock). False when there was none.
   */
  async delete(key: EnvironmentKey): Promise<boolean> {
    const volumes = this.options.volumes;
    if (!volumes || !(await volumes.info(key))) return false;
    try {
      await volumes.delete(key);
      return true;
    } catch (error) {
      throw homeError(error);
    }
  }

  private requireVolumes(): HomeVolumes {
    const volumes = this.options.volumes;
    // The environments only call ensure when a provider is installed, which it is only when enabled.
    if (!volumes) throw errors.homeNotSupported();
    return volumes;
  }
}

/** The default volumes for a config: `<dataDir>/homes`, or none when homes are disabled. */
export function loopHomeVolumesFor(config: Config, now?: () => number): LoopHomeVolumes | undefined {
  if (!config.homes.enabled) return undefined;
  return new LoopHomeVolumes({
    root: join(resolve(config.dataDir), 'homes'),
    reserveBytes: config.homes.reserveBytes,
    // The mapped uid under the engine's userns-remap (docs/hardening.md), else 1000.
    ownerUid: config.homes.ownerUid,
    ...(now ? { now } : {}),
  });
}

declare module 'fastify' {
  interface FastifyInstance {
    homes: HomeService;
  }
}

export interface HomePluginOptions {
  readonly volumes?: HomeVolumes;
}

export default fp(
  async (app, opts: HomePluginOptions) => {
    const service = new HomeService({
      ...(opts.volumes ? { volumes: opts.volumes } : {}),
      config: app.config,
      store: app.store,
      log: app.log.child({ component: 'homes' }),
      now: app.now,
    });
    app.decorate('homes', service);
    if (!service.enabled) {
      app.log.warn('homes are disabled: every environment gets a throwaway home that is lost on restart');
      return;
    }
    // Here, not in onReady: this plugin is registered before the environments, whose onReady
    // adopts running containers, and nothing may start on a home that is not mounted.
    const mounted = await service.remountAll();
    app.log.info({ mounted }, 'homes mounted');
  },
  { name: 'homes' },
);
