/**
 * Work for the whole deployment (a sweep, a prune) that several instances sharing one store
 * must do once per interval, not once per instance. Every instance ticks each interval; a tick
 * runs the job only if it takes or renews the job's lease (named after the job, held by the
 * instance id) for one interval. An instance that stops renewing (it died, or hangs) loses the
 * job to whichever instance ticks first after the lease expires; a graceful close releases the
 * lease, so another takes over at its next tick. Per-instance work (this instance's terminals,
 * its own memory) does not belong here.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Store } from './store/store.js';

export interface PeriodicJobOptions {
  /** The lease's name: the same on every instance, one per job. */
  readonly name: string;
  readonly intervalMs: number;
  /** When the first tick comes after `start()`; default one interval. */
  readonly firstTickAfterMs?: number;
  readonly store: Pick<Store, 'leases'>;
  /** This instance's id (`config.instanceId`): unique among the instances sharing the store. */
  readonly holder: string;
  readonly now: () => number;
  readonly log: Pick<FastifyBaseLogger, 'warn'>;
  readonly run: () => Promise<unknown>;
}

export class PeriodicJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<boolean> | undefined;
  private closed = false;

  constructor(private readonly options: PeriodicJobOptions) {}

  start(): void {
    if (this.timer || this.closed) return;
    this.schedule(this.options.firstTickAfterMs ?? this.options.intervalMs);
  }

  /**
   * One turn: runs the job if this instance holds the lease for the coming interval. Resolves
   * to whether it ran. A tick while the previous one still runs shares it; failures are logged.
   */
  tick(): Promise<boolean> {
    this.running ??= this.tickOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops ticking, waits for a run in progress, and releases the lease. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.options.store.leases
      .release(this.options.name, this.options.holder)
      .catch((error: unknown) =>
        this.options.log.warn({ err: error, job: this.options.name }, 'lease not released'),
      );
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      // From this tick's start, not its end: a slow run must not push the renewal past the lease.
      this.schedule(this.options.intervalMs);
      void this.tick();
    }, delayMs);
    this.timer.unref();
  }

  private async tickOnce(): Promise<boolean> {
    const { name, holder, intervalMs, store, log } = this.options;
    if (this.closed) return false;
    let held: boolean;
    try {
      held = await store.leases.tryAcquire(name, holder, this.options.now(), intervalMs);
    } catch (error) {
      log.warn({ err: error, job: name }, 'periodic job skipped: its lease could not be checked');
      return false;
    }
    if (!held) return false;
    try {
      await this.options.run();
    } catch (error) {
      log.warn({ err: error, job: name }, 'periodic job failed; it runs again next interval');
    }
    return true;
  }
}
