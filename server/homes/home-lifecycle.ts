/**
 * What happens to homes over time and on request (`app.homeLifecycle`): restart an environment
 * (fresh container, same home), delete a home (CloudShell's recovery when `.bashrc` breaks the
 * shell), the retention sweep, and the `home-nearly-full` notice.
 *
 * Removals run under the environment's lock (`environments.exclusive`), so no terminal can start
 * a container on a home between the container's removal and the home's deletion; terminals are
 * closed inside that lock too, so the stop their closing triggers queues behind the removal and
 * finds nothing left to stop (instead of waiting out a graceful stop first).
 */
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import type { Store } from '../store/store.js';
import { audit } from '../audit.js';
import type { EnvironmentService } from '../environments/environment-service.js';
import type { TerminalService } from '../terminals/terminal-service.js';
import type { Terminal } from '../terminals/terminal.js';
import { formatHomeBytes, homeNearlyFullRatio } from '../protocol/api.js';
import { PeriodicJob } from '../periodic-job.js';
import type { Disposable, EnvironmentKey } from '../../sandbox/index.js';
import type { HomeService } from './home-service.js';

/** Below this share the notice is armed again, so usage hovering at 90 % does not repeat it. */
const rearmRatio = 0.85;

export interface HomeLifecycleOptions {
  readonly homes: HomeService;
  readonly environments: EnvironmentService;
  readonly terminals: TerminalService;
  readonly store: Store;
  readonly config: Pick<Config, 'homes' | 'instanceId'>;
  readonly log: FastifyBaseLogger;
  readonly now?: () => number;
}

const keyId = (key: EnvironmentKey): string => `${key.region}\u0000${key.ownerId}`;

export class HomeLifecycle {
  private readonly now: () => number;
  private readonly warned = new Set<string>();
  private readonly subscriptions: Disposable[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  /** The retention sweep: once per interval across the instances sharing the store. */
  private readonly retention: PeriodicJob;
  private sweeping: Promise<EnvironmentKey[]> | undefined;
  private closed = false;

  constructor(private readonly options: HomeLifecycleOptions) {
    this.now = options.now ?? Date.now;
    this.retention = new PeriodicJob({
      name: 'homes.retention-sweep',
      intervalMs: options.config.homes.sweepIntervalS * 1000,
      firstTickAfterMs: options.config.homes.sweepDelayS * 1000,
      store: options.store,
      holder: options.config.instanceId,
      now: this.now,
      log: options.log,
      run: () => this.sweep(),
    });
  }

  /** Listens to terminals and starts the timers (the sweep and the usage checks). */
  start(): void {
    const { terminals, homes, config, log } = this.options;
    this.subscriptions.push(
      terminals.onOpened((t) => {
        homes
          .markUsed(keyOf(t))
          .catch((error: unknown) => log.warn({ err: error }, 'could not mark home used'));
      }),
      terminals.onAttached((t) => void this.checkUsage(keyOf(t))),
    );
    if (!homes.enabled) return;
    this.retention.start();
    // This instance's open homes: every instance checks its own.
    const usage = setInterval(() => void this.checkOpenHomes(), config.homes.usageCheckIntervalS * 1000);
    usage.unref();
    this.timers.push(usage);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers.splice(0)) clearTimeout(timer);
    for (const subscription of this.subscriptions.splice(0)) subscription.dispose();
    await this.retention.close();
  }

  /** Closes the user's terminals there and removes the container; the next terminal gets a new one. */
  async restart(key: EnvironmentKey): Promise<{ terminalsClosed: number }> {
    return this.options.environments.exclusive(key, async (environment) => {
      const terminalsClosed = this.options.terminals.closeAllIn(
        key.ownerId,
        key.region,
        'restarted',
        'Your environment is restarting; your home and its files are kept.',
      );
      await environment.remove();
      return { terminalsClosed };
    });
  }

  /** Closes terminals, removes the container, deletes the home. The next use creates a fresh one. */
  async deleteHome(key: EnvironmentKey): Promise<{ deleted: boolean; terminalsClosed: number }> {
    const result = await this.options.environments.exclusive(key, async (environment) => {
      const terminalsClosed = this.options.terminals.closeAllIn(
        key.ownerId,
        key.region,
        'home-deleted',
        'Your home was deleted. Open a new tab to get a fresh, empty home.',
      );
      await environment.remove();
      return { deleted: await this.options.homes.delete(key), terminalsClosed };
    });
    this.warned.delete(keyId(key));
    return result;
  }

  /**
   * Deletes homes unused for the retention period, except those with open terminals or a
   * running environment. One audit entry per deleted home (actor: system). Returns what went.
   */
  sweep(): Promise<EnvironmentKey[]> {
    if (this.sweeping) return this.sweeping;
    this.sweeping = this.sweepOnce().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /** Sends the nearly-full notice when usage has crossed 90 % since the last one. */
  async checkUsage(key: EnvironmentKey): Promise<void> {
    const { homes, terminals, log } = this.options;
    if (!homes.enabled) return;
    try {
      const usage = await homes.usage(key);
      if (!usage || usage.totalBytes <= 0) return;
      const ratio = usage.usedBytes / usage.totalBytes;
      const id = keyId(key);
      if (ratio < rearmRatio) {
        this.warned.delete(id);
        return;
      }
      if (ratio < homeNearlyFullRatio || this.warned.has(id)) return;
      const attached = terminals.list(key.ownerId, key.region).filter((t) => t.attached);
      // Nobody to tell yet: try again when a page attaches or at the next check.
      if (attached.length === 0) return;
      this.warned.add(id);
      const percent = Math.floor(ratio * 100);
      for (const terminal of attached)
        terminal.notify({
          type: 'notice',
          kind: 'home-nearly-full',
          message: `Your home is ${percent}% full (${formatHomeBytes(usage.usedBytes)} of ${formatHomeBytes(usage.totalBytes)}). Delete files you no longer need: writes fail once it is full.`,
          usedBytes: usage.usedBytes,
          totalBytes: usage.totalBytes,
        });
    } catch (error) {
      log.warn({ err: error, region: key.region }, 'could not check home usage');
    }
  }

  private async checkOpenHomes(): Promise<void> {
    const keys = new Map<string, EnvironmentKey>();
    for (const terminal of this.options.terminals.all()) keys.set(keyId(keyOf(terminal)), keyOf(terminal));
    for (const key of keys.values()) {
      if (this.closed) return;
      await this.checkUsage(key);
      // Open terminals are use: a home never expires under someone who keeps a shell open.
      await this.options.homes.markUsed(key).catch(() => undefined);
    }
  }

  private async sweepOnce(): Promise<EnvironmentKey[]> {
    const { homes, environments, terminals, store, log } = this.options;
    const deleted: EnvironmentKey[] = [];
    const hasTerminals = (key: EnvironmentKey) => terminals.list(key.ownerId, key.region).length > 0;
    for (const home of await homes.list()) {
      if (this.closed) break;
      const key = { ownerId: home.ownerId, region: home.region };
      if (homes.expiresAt(home.lastUsedAt) > this.now() || hasTerminals(key)) continue;
      if (!environments.hasRegion(key.region)) {
        log.warn({ region: key.region }, 'expired home in a region no longer configured; left in place');
        continue;
      }
      try {
        const gone = await environments.exclusive(key, async (environment) => {
          // Checked again under the lock: a terminal may have opened since the list was read.
          const info = await homes.info(key);
          if (!info || homes.expiresAt(info.lastUsedAt) > this.now() || hasTerminals(key)) return undefined;
          if ((await environment.status()).state === 'running') return undefined;
          await environment.remove();
          await homes.delete(key);
          return info;
        });
        if (!gone) continue;
        deleted.push(key);
        this.warned.delete(keyId(key));
        await audit(store, undefined, {
          action: 'home.expire',
          target: `home:${key.region}:${key.ownerId}`,
          actor: { id: null, name: 'system' },
          details: {
            ownerId: key.ownerId,
            region: key.region,
            lastUsedAt: new Date(gone.lastUsedAt).toISOString(),
            retentionDays: this.options.config.homes.retentionDays,
          },
        });
        log.info({ ownerId: key.ownerId, region: key.region }, 'expired home deleted');
      } catch (error) {
        log.error(
          { err: error, ownerId: key.ownerId, region: key.region },
          'could not delete an expired home',
        );
      }
    }
    return deleted;
  }
}

const keyOf = (terminal: Terminal): EnvironmentKey => ({
  ownerId: terminal.ownerId,
  region: terminal.region,
});

declare module 'fastify' {
  interface FastifyInstance {
    homeLifecycle: HomeLifecycle;
  }
}

export default fp(
  async (app) => {
    const lifecycle = new HomeLifecycle({
      homes: app.homes,
      environments: app.environments,
      terminals: app.terminals,
      store: app.store,
      config: app.config,
      log: app.log.child({ component: 'home-lifecycle' }),
      now: app.now,
    });
    app.decorate('homeLifecycle', lifecycle);
    app.addHook('onReady', async () => lifecycle.start());
    app.addHook('preClose', async () => lifecycle.close());
  },
  { name: 'home-lifecycle', dependencies: ['homes', 'environments', 'terminals'] },
);
