/**
 * Environments on demand: one SandboxDriver per region, `ensure` to get a running environment for
 * (user, region) with phases for the page, `stop` when the last terminal is gone (never `remove`:
 * removal is an explicit user or admin action), `reconcile` at start to re-adopt what the backend
 * already runs, and die/oom events passed on to whoever listens (the terminals).
 *
 * Calls for one environment are serialized, so a stop that races a new terminal's start cannot
 * leave the environment stopped under a live shell.
 */
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import type { Config, RegionConfig } from '../config.js';
import type {
  CredentialsRef,
  Disposable,
  EnvironmentEvent,
  EnvironmentKey,
  EnvironmentSpec,
  EnvironmentStatus,
  HomeRef,
  SandboxDriver,
  Shell,
  ShellOptions,
} from '../../sandbox/index.js';
import type { SandboxGuard } from './sandbox-guard.js';
import { errors } from '../errors.js';
import { PhaseTimer } from '../phase-timer.js';
import { StartQueue } from './start-queue.js';

/** `queued`: waiting for a start slot (see StartQueue), with how many are ahead. */
export type EnvironmentPhase = 'queued' | 'creating' | 'starting' | 'ready';

/** What goes with a phase: for `queued`, the number of starts in front of this one (0: next). */
export interface PhaseDetail {
  readonly ahead?: number;
}

export interface EnvironmentOwner {
  readonly id: string;
  readonly username: string;
}

/** Where homes come from, once home volumes exist (sandbox/homes/home-volumes.ts). */
export interface HomesProvider {
  /** The environment's home, ready to mount (for a loop-file home: mounted on the host). */
  ensure(key: EnvironmentKey): Promise<HomeRef>;
}

/** Makes the driver for a region; injectable so tests can use a fake backend. */
export type DriverFactory = (
  region: RegionConfig,
  log: FastifyBaseLogger,
) => SandboxDriver | Promise<SandboxDriver>;

export interface EnvironmentServiceOptions {
  readonly config: Pick<Config, 'regions' | 'sandbox'>;
  readonly driverFactory: DriverFactory;
  readonly log: FastifyBaseLogger;
  readonly homes?: HomesProvider;
  /** Firewall and engine-version checks that must pass before an environment starts. */
  readonly guard?: SandboxGuard;
  /**
   * After the engine refused a container for lack of disk space, new starts in that region are
   * refused at once (507) for this long; the next start after it asks the engine again.
   */
  readonly hostFullHoldMs?: number;
  readonly now?: () => number;
}

/** `stopped`: the environment ended by itself; `oom`: a process in it was killed for memory. */
export interface EnvironmentChange extends EnvironmentKey {
  readonly kind: 'stopped' | 'oom';
  /** For `stopped`: `oom`, `exited:<code>`, or `died` when the backend does not say. */
  readonly reason: string;
}

/**
 * Preparation before an environment is created or started (the credentials socket's directory);
 * what it returns goes into the spec.
 */
export type StartHook = (key: EnvironmentKey) => Promise<Pick<EnvironmentSpec, 'credentials'>>;

/** What a task run by `exclusive` may do to its environment. */
export interface ExclusiveEnvironment {
  status(): Promise<EnvironmentStatus>;
  remove(): Promise<void>;
}

const keyOf = (key: EnvironmentKey): string => `${key.region}\u0000${key.ownerId}`;

/** Bounds on backend calls, so a hung engine fails requests instead of holding them forever. */
const pingTimeoutMs = 2_000;
/** How long a successful ping vouches for a region's engine (failures are never reused). */
const pingFreshMs = 1_000;
const statusTimeoutMs = 5_000;
const shellTimeoutMs = 10_000;
const defaultHostFullHoldMs = 10_000;

/** Rejects with `COVE_ERR_SANDBOX_UNAVAILABLE` when `call` takes longer than `ms`. */
function bounded<T>(call: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          Object.assign(new Error(`the environment backend did not answer in ${ms} ms (${what})`), {
            code: 'COVE_ERR_SANDBOX_UNAVAILABLE',
          }),
        ),
      ms,
    );
    timer.unref();
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

export class EnvironmentService {
  private readonly drivers = new Map<string, SandboxDriver>();
  private readonly known = new Map<string, EnvironmentStatus>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly listeners = new Set<(change: EnvironmentChange) => void>();
  private readonly subscriptions: Disposable[] = [];
  private readonly startHooks = new Set<StartHook>();
  private readonly removedListeners = new Set<(key: EnvironmentKey) => void>();
  /** Work that must not be cut by an idle stop (file transfers), counted per environment. */
  private readonly holds = new Map<string, number>();
  /** Idle stops asked for while held, carried out when the last hold ends. */
  private readonly deferredStops = new Set<string>();
  /** Region → when its engine last refused a container for a full disk. */
  private readonly hostFullAt = new Map<string, number>();
  private readonly now: () => number;
  private readonly starts: StartQueue;
  /** Per region: the last ping's answer and when it came, or the ping in flight. */
  private readonly pings = new Map<string, { ok: boolean; at: number; pending?: Promise<boolean> }>();

  constructor(private readonly options: EnvironmentServiceOptions) {
    this.now = options.now ?? Date.now;
    this.starts = new StartQueue(options.config.sandbox.maxConcurrentStarts);
  }

  /**
   * Keeps an idle stop from cutting work that runs in the environment without a terminal (a file
   * transfer after the last tab closed). Dispose when the work ends.
   */
  hold(key: EnvironmentKey): Disposable {
    const id = keyOf(key);
    this.holds.set(id, (this.holds.get(id) ?? 0) + 1);
    let released = false;
    return {
      dispose: () => {
        if (released) return;
        released = true;
        const left = (this.holds.get(id) ?? 1) - 1;
        if (left > 0) {
          this.holds.set(id, left);
          return;
        }
        this.holds.delete(id);
        if (!this.deferredStops.delete(id)) return;
        this.stop(key).catch((error: unknown) => {
          this.options.log.warn({ err: error, region: key.region }, 'could not stop an idle environment');
        });
      },
    };
  }

  /** The stop for "nothing uses this environment any more": deferred while something holds it. */
  stopWhenIdle(key: EnvironmentKey): Promise<void> {
    const id = keyOf(key);
    if (this.holds.has(id)) {
      this.deferredStops.add(id);
      return Promise.resolve();
    }
    return this.stop(key);
  }

  /** Creates one driver per region and subscribes to its events. */
  async init(): Promise<void> {
    for (const region of this.options.config.regions) {
      const driver = await this.options.driverFactory(region, this.options.log);
      this.drivers.set(region.id, driver);
      this.subscriptions.push(driver.onEnvironmentEvent((event) => this.onBackendEvent(event)));
    }
  }

  driver(region: string): SandboxDriver {
    const driver = this.drivers.get(region);
    if (!driver) throw new Error(`no driver for region ${region}`);
    return driver;
  }

  hasRegion(region: string): boolean {
    return this.drivers.has(region);
  }

  /** Running environments per region, as far as this server knows (the metrics). */
  runningByRegion(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const status of this.known.values())
      if (status.state === 'running') counts.set(status.region, (counts.get(status.region) ?? 0) + 1);
    return counts;
  }

  /** What the server knows runs (or ran) right now, from reconcile, ensure and events. */
  list(): EnvironmentStatus[] {
    return [...this.known.values()];
  }

  spec(
    owner: EnvironmentOwner,
    region: string,
    home?: HomeRef,
    credentials?: CredentialsRef,
  ): EnvironmentSpec {
    const { sandbox } = this.options.config;
    const runtime = this.options.config.regions.find((r) => r.id === region)?.runtime;
    return {
      ownerId: owner.id,
      region,
      // The region's network behind Cove's egress firewall; its own runtime if it has one.
      network: 'region',
      ...(runtime ? { runtime } : {}),
      image: sandbox.image,
      limits: {
        pidsLimit: sandbox.pidsLimit,
        memoryBytes: sandbox.memoryBytes,
        cpuMillis: sandbox.cpuMillis,
        tmpSizeBytes: sandbox.tmpSizeBytes,
      },
      ...(home ? { home } : {}),
      ...(credentials ? { credentials } : {}),
      env: { COVE_USER: owner.username, COVE_REGION: region, AWS_REGION: region, AWS_DEFAULT_REGION: region },
    };
  }

  /**
   * Gets the environment running. Phases go to `onPhase` as they happen; a known-running
   * environment answers at once without a backend round trip.
   */
  ensure(
    owner: EnvironmentOwner,
    region: string,
    onPhase: (phase: EnvironmentPhase, detail?: PhaseDetail) => void = () => {},
    options: { readonly background?: boolean } = {},
  ): Promise<EnvironmentStatus> {
    const key = { ownerId: owner.id, region };
    // Someone uses it again: an idle stop deferred by a hold no longer applies.
    this.deferredStops.delete(keyOf(key));
    const cached = this.known.get(keyOf(key));
    // Not while something else runs for it: a removal in progress may be about to end it.
    if (cached?.state === 'running' && !this.queues.has(keyOf(key))) {
      onPhase('ready');
      return Promise.resolve(cached);
    }
    return this.serialize(key, async () => {
      const again = this.known.get(keyOf(key));
      if (again?.state === 'running') {
        onPhase('ready');
        return again;
      }
      const driver = this.driver(region);
      const timer = new PhaseTimer();
      const current = await bounded(driver.status(key), statusTimeoutMs, 'read the environment');
      timer.lap('status');
      if (current.state === 'running') return this.start(owner, region, current, timer, onPhase);
      // Only starts take a slot: a new tab in a running environment never waits behind a class.
      const task = () => {
        timer.lap('queue');
        return this.start(owner, region, current, timer, onPhase);
      };
      return options.background
        ? this.starts.runInBackground(task)
        : this.starts.run(task, (ahead) => onPhase('queued', { ahead }));
    });
  }

  /** The part of `ensure` after the status read: checks, home, credentials, the backend's start. */
  private async start(
    owner: EnvironmentOwner,
    region: string,
    current: EnvironmentStatus,
    timer: PhaseTimer,
    onPhase: (phase: EnvironmentPhase) => void,
  ): Promise<EnvironmentStatus> {
    const key = { ownerId: owner.id, region };
    const driver = this.driver(region);
    if (current.state !== 'running') await this.options.guard?.assertCanStart(region);
    timer.lap('guard');
    if (current.state !== 'running') onPhase(current.state === 'missing' ? 'creating' : 'starting');
    const home = this.options.homes ? await this.options.homes.ensure(key) : undefined;
    timer.lap('home');
    let credentials: CredentialsRef | undefined;
    for (const hook of this.startHooks) credentials ??= (await hook(key)).credentials;
    timer.lap('prepare');
    const status = await driver
      .ensure(this.spec(owner, region, home, credentials))
      .catch((error: unknown) => {
        if ((error as { code?: unknown } | null)?.code !== 'COVE_ERR_SANDBOX_HOST_FULL') throw error;
        this.hostFullAt.set(region, this.now());
        this.options.log.error(
          { err: error, region },
          "the engine's storage is full: no new environment can start until space is freed",
        );
        throw errors.environmentHostFull(error);
      });
    if (this.hostFullAt.delete(region))
      this.options.log.info({ region }, "the engine's storage has room again");
    timer.lap('engine');
    if (current.state !== 'running')
      this.options.log.info(
        { region, ownerId: key.ownerId, from: current.state, ms: timer.laps() },
        'environment started',
      );
    this.known.set(keyOf(key), status);
    onPhase('ready');
    return status;
  }

  /** Opens a shell; when the environment turned out not to be running, forgets the cache entry. */
  async openShell(key: EnvironmentKey, options: ShellOptions): Promise<Shell> {
    try {
      return await bounded(this.driver(key.region).openShell(key, options), shellTimeoutMs, 'open a shell');
    } catch (error) {
      this.known.delete(keyOf(key));
      throw error;
    }
  }

  /** Names of the held shells alive in a running environment (claims made inside it). */
  listHeldShells(key: EnvironmentKey): Promise<string[]> {
    return bounded(this.driver(key.region).listHeldShells(key), shellTimeoutMs, 'list held shells');
  }

  /**
   * What `ensure` would refuse before starting anything (engine below the version gate, firewall
   * missing), asked up front by routes so the user reads the 503 at once instead of after a 201.
   * Free when the environment already runs.
   */
  async assertCanStart(key: EnvironmentKey): Promise<void> {
    if (this.known.get(keyOf(key))?.state === 'running') return;
    if (this.hostFull(key.region)) throw errors.environmentHostFull();
    await this.options.guard?.assertCanStart(key.region);
  }

  /** True while the region's engine recently refused a container for a full disk. */
  hostFull(region: string): boolean {
    const at = this.hostFullAt.get(region);
    return at !== undefined && this.now() - at < (this.options.hostFullHoldMs ?? defaultHostFullHoldMs);
  }

  /** For /readyz: no region's engine is out of disk space (as far as the last starts tell). */
  hasCapacity(): boolean {
    return [...this.drivers.keys()].every((region) => !this.hostFull(region));
  }

  /**
   * Whether one region's backend answers now (bounded: a hung engine counts as down). Requests
   * that ask at the same moment share one ping, and an answer counts for `pingFreshMs`: thirty
   * pages opening at nine o'clock must not send thirty pings to an engine busy starting their
   * containers, and a ping that waits behind that work is not an engine that is down.
   */
  reachable(region: string): Promise<boolean> {
    const last = this.pings.get(region);
    if (last?.pending) return last.pending;
    if (last?.ok && performance.now() - last.at < pingFreshMs) return Promise.resolve(true);
    const pending = bounded(this.driver(region).ping(), pingTimeoutMs, 'ping')
      .catch(() => false)
      .then((ok) => {
        this.pings.set(region, { ok, at: performance.now() });
        return ok;
      });
    this.pings.set(region, { ok: last?.ok ?? false, at: last?.at ?? 0, pending });
    return pending;
  }

  /** Stops (never removes) the environment; its home is kept. */
  stop(key: EnvironmentKey): Promise<void> {
    // From now on an ensure must queue behind the stop rather than trust the cached state.
    const status = this.known.get(keyOf(key));
    if (status?.state === 'running') this.known.set(keyOf(key), { ...status, state: 'stopped' });
    return this.serialize(key, async () => {
      await this.driver(key.region).stop(key);
      const status = this.known.get(keyOf(key));
      if (status) this.known.set(keyOf(key), { ...status, state: 'stopped' });
    });
  }

  /**
   * Removes the container (the home stays unless the caller deletes it). Idempotent. The next
   * `ensure` creates a fresh container.
   */
  remove(key: EnvironmentKey): Promise<void> {
    return this.exclusive(key, (environment) => environment.remove());
  }

  /**
   * Runs `task` while no other call for this environment runs (no start can slip in between a
   * removal and what the task does next, such as deleting the home the container had mounted).
   */
  exclusive<T>(key: EnvironmentKey, task: (environment: ExclusiveEnvironment) => Promise<T>): Promise<T> {
    return this.serialize(key, () =>
      task({
        status: () => this.status(key),
        remove: async () => {
          await this.driver(key.region).remove(key);
          this.known.delete(keyOf(key));
          for (const listener of this.removedListeners) listener(key);
        },
      }),
    );
  }

  /** Reads every driver's environments (labels are the truth after a restart) and adopts them. */
  async reconcile(): Promise<EnvironmentStatus[]> {
    const found: EnvironmentStatus[] = [];
    for (const [region, driver] of this.drivers) {
      try {
        for (const status of await driver.list()) {
          this.known.set(keyOf(status), status);
          found.push(status);
        }
      } catch (error) {
        this.options.log.warn({ err: error, region }, 'could not list environments; will learn them on use');
      }
    }
    return found;
  }

  /** Fresh status from the backend (also refreshes what the server knows). */
  async status(key: EnvironmentKey): Promise<EnvironmentStatus> {
    const status = await bounded(
      this.driver(key.region).status(key),
      statusTimeoutMs,
      'read the environment',
    );
    this.known.set(keyOf(key), status);
    return status;
  }

  /** Called when an environment stops by itself or hits OOM; returns a disposable. */
  onChange(listener: (change: EnvironmentChange) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Runs before every container create or start (not for one already known to run). */
  onStarting(hook: StartHook): Disposable {
    this.startHooks.add(hook);
    return { dispose: () => this.startHooks.delete(hook) };
  }

  /** Called after an environment's container was removed (its home may remain). */
  onRemoved(listener: (key: EnvironmentKey) => void): Disposable {
    this.removedListeners.add(listener);
    return { dispose: () => this.removedListeners.delete(listener) };
  }

  /** Reachability of every region's backend, for /readyz. */
  async ping(): Promise<boolean> {
    const results = await Promise.all([...this.drivers.keys()].map((region) => this.reachable(region)));
    return results.every(Boolean);
  }

  close(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.dispose();
    this.listeners.clear();
  }

  private onBackendEvent(event: EnvironmentEvent): void {
    const key = { ownerId: event.ownerId, region: event.region };
    let change: EnvironmentChange;
    if (event.kind === 'died') {
      const status = this.known.get(keyOf(key));
      this.known.set(keyOf(key), {
        ...(status ?? key),
        state: 'stopped',
        ...(event.stopReason ? { stopReason: event.stopReason } : {}),
      });
      change = { ...key, kind: 'stopped', reason: event.stopReason ?? 'died' };
    } else {
      // An OOM kill of one process is not the end of the environment; only `died` is.
      change = { ...key, kind: 'oom', reason: 'oom' };
    }
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.options.log.error({ err: error }, 'environment stop listener failed');
      }
    }
  }

  private serialize<T>(key: EnvironmentKey, task: () => Promise<T>): Promise<T> {
    const id = keyOf(key);
    const previous = this.queues.get(id) ?? Promise.resolve();
    const next = previous.then(task, task);
    const settled = next.catch(() => undefined);
    this.queues.set(id, settled);
    void settled.then(() => {
      if (this.queues.get(id) === settled) this.queues.delete(id);
    });
    return next;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    environments: EnvironmentService;
  }
}

export interface EnvironmentPluginOptions {
  readonly driverFactory: DriverFactory;
  readonly homes?: HomesProvider;
  readonly guard?: SandboxGuard;
}

export default fp(
  async (app, opts: EnvironmentPluginOptions) => {
    const service = new EnvironmentService({
      config: app.config,
      driverFactory: opts.driverFactory,
      log: app.log.child({ component: 'environments' }),
      ...(opts.homes ? { homes: opts.homes } : {}),
      ...(opts.guard ? { guard: opts.guard } : {}),
    });
    await service.init();
    await opts.guard?.init((region, accept) => service.driver(region).checkVersions?.(accept));
    app.decorate('environments', service);
    app.metrics.countEnvironments(() => service.runningByRegion());
    app.addHook('onReady', async () => {
      const found = await service.reconcile();
      app.log.info({ environments: found.length }, 'environments reconciled');
    });
    app.addHook('onClose', async () => service.close());
  },
  { name: 'environments', dependencies: ['metrics'] },
);
