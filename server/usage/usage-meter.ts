/**
 * The weekly shell-time quota: counts time while a user's environment runs, per user per week
 * (Monday 00:00 UTC), and refuses new terminals once the user's groups' limit is used up.
 *
 * Wall time counts once per user: two regions running at once cost the same as one, because the
 * quota is about how long someone uses Cove, not how many containers they keep (and the page
 * shows one number). Every `usage.tickS` the meter charges each user whose environment runs the
 * time since the previous tick and saves it, so a crash loses at most one tick; a graceful close
 * saves up to the last second. Environments that already run when the quota runs out keep
 * running: the quota stops new terminals, it does not cut anyone off mid-command.
 */
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import type { EnvironmentStatus } from '../../sandbox/index.js';
import { errors } from '../errors.js';
import { formatUsageDuration, formatUtcTime, type UsageView } from '../protocol/api.js';
import type { Store, UsageIncrement } from '../store/store.js';
import { splitByWeek, usageWeek, weekMs } from './usage-week.js';
import { weeklyLimit } from './weekly-limit.js';

export interface UsageMeterOptions {
  readonly store: Pick<Store, 'usage' | 'groups'>;
  /** What runs right now (the environment service's view: ensure, stop, reconcile, events). */
  readonly environments: { list(): readonly EnvironmentStatus[] };
  readonly tickS: number;
  /** Weeks of usage kept, the current one included; older rows are deleted. */
  readonly keepWeeks: number;
  readonly now: () => number;
  readonly log: FastifyBaseLogger;
  /** Called once when a tick takes a user from under their limit to at or over it. */
  readonly onExhausted?: (userId: string, usage: UsageView) => void;
}

export class UsageMeter {
  /** Time up to which usage has been counted; advances in whole seconds so no remainder is lost. */
  private countedTo: number;
  /** Users whose environment ran at the previous tick. */
  private running = new Set<string>();
  /** Increments not saved yet (the store was unavailable): retried with the next tick. */
  private pending: UsageIncrement[] = [];
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /** The week whose start the last prune kept; a new week prunes again. */
  private prunedFor: number | undefined;

  constructor(private readonly options: UsageMeterOptions) {
    this.countedTo = options.now();
  }

  /** Starts counting from now; time before (the server was down) is not charged. */
  start(): void {
    if (this.timer || this.closed) return;
    this.countedTo = this.options.now();
    this.timer = setInterval(() => void this.tick(), this.options.tickS * 1000);
    this.timer.unref();
  }

  /** Charges the time since the previous tick and saves it. Ticks never overlap. */
  tick(): Promise<void> {
    const next = this.queue.then(() => this.tickOnce());
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** This week's usage of one user, as the portal shows it. */
  async summary(userId: string): Promise<UsageView> {
    const week = usageWeek(this.options.now());
    const [usedS, groups] = await Promise.all([
      this.options.store.usage.get(userId, week.start),
      this.options.store.groups.groupsOf(userId),
    ]);
    return { usedS, limitS: weeklyLimit(groups), resetsAt: new Date(week.end).toISOString() };
  }

  /** Throws COVE_ERR_USAGE_QUOTA_EXHAUSTED, saying when it resets, if the user has no time left. */
  async assertTimeLeft(userId: string): Promise<void> {
    const usage = await this.summary(userId);
    if (usage.limitS === null || usage.usedS < usage.limitS) return;
    const message =
      usage.limitS === 0
        ? 'Your groups give you no shell time. Ask your administrator for a weekly allowance.'
        : `You have used your ${formatUsageDuration(usage.limitS)} of shell time this week. It resets ${formatUtcTime(usage.resetsAt)}.`;
    const retryAfterS = (Date.parse(usage.resetsAt) - this.options.now()) / 1000;
    throw errors.usageQuotaExhausted(message, { ...usage, limitS: usage.limitS }, retryAfterS);
  }

  /** Saves what was counted up to now and stops the timer. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.tick().catch((error: unknown) =>
      this.options.log.warn({ err: error }, 'could not save shell time at shutdown'),
    );
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tickOnce(): Promise<void> {
    if (this.closed) return;
    const now = this.options.now();
    await this.pruneOldWeeks(now);
    const elapsedS = Math.floor((now - this.countedTo) / 1000);
    // A clock that stepped back: wait until it passes the last counted instant again.
    if (elapsedS <= 0) return;
    const from = this.countedTo;
    const to = from + elapsedS * 1000;
    this.countedTo = to;

    const startedAt = new Map<string, number>();
    for (const status of this.options.environments.list()) {
      if (status.state !== 'running') continue;
      const started = status.startedAt?.getTime() ?? from;
      startedAt.set(status.ownerId, Math.min(startedAt.get(status.ownerId) ?? Infinity, started));
    }
    const added = new Map<string, number>();
    for (const [userId, started] of startedAt) {
      // Someone who was not running at the previous tick is charged from their start, not the tick.
      const since = this.running.has(userId) ? from : Math.min(Math.max(from, started), to);
      for (const part of splitByWeek(since, to)) {
        const seconds = Math.round(part.seconds);
        if (seconds <= 0) continue;
        this.pending.push({ userId, weekStart: part.weekStart, seconds });
        if (part.weekStart === usageWeek(to - 1).start) added.set(userId, (added.get(userId) ?? 0) + seconds);
      }
    }
    this.running = new Set(startedAt.keys());
    if (this.pending.length === 0) return;

    try {
      await this.options.store.usage.add(this.pending);
      this.pending = [];
    } catch (error) {
      this.options.log.warn({ err: error, users: added.size }, 'could not save shell time; will retry');
      return;
    }
    if (this.options.onExhausted) await this.reportCrossings(added);
  }

  /** Best effort: rows nobody reads any more go once per week; a failure is retried next tick. */
  private async pruneOldWeeks(now: number): Promise<void> {
    const week = usageWeek(now).start;
    if (this.prunedFor === week) return;
    const oldestKept = week - (this.options.keepWeeks - 1) * weekMs;
    try {
      const deleted = await this.options.store.usage.prune(oldestKept);
      this.prunedFor = week;
      if (deleted > 0) this.options.log.info({ deleted }, 'deleted old weeks of shell time');
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not delete old weeks of shell time; will retry');
    }
  }

  private async reportCrossings(added: ReadonlyMap<string, number>): Promise<void> {
    for (const [userId, seconds] of added) {
      try {
        const usage = await this.summary(userId);
        if (usage.limitS === null || usage.limitS === 0) continue;
        if (usage.usedS >= usage.limitS && usage.usedS - seconds < usage.limitS)
          this.options.onExhausted?.(userId, usage);
      } catch (error) {
        this.options.log.warn({ err: error }, 'could not check a user against their quota');
      }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    usage: UsageMeter;
  }
}

export default fp(
  async (app) => {
    const meter = new UsageMeter({
      store: app.store,
      environments: app.environments,
      tickS: app.config.usage.tickS,
      keepWeeks: app.config.usage.keepWeeks,
      now: app.now,
      log: app.log.child({ component: 'usage' }),
      onExhausted: (userId, usage) => {
        app.log.info({ userId, usedS: usage.usedS, limitS: usage.limitS }, 'weekly shell time used up');
        const notice = {
          type: 'notice',
          kind: 'info',
          message: `You have used your ${formatUsageDuration(usage.limitS ?? 0)} of shell time this week. Open shells keep running; new ones can be opened after ${formatUtcTime(usage.resetsAt)}.`,
          usedS: usage.usedS,
          limitS: usage.limitS,
          resetsAt: usage.resetsAt,
        } as const;
        for (const terminal of app.terminals.list(userId)) terminal.notify(notice);
      },
    });
    app.decorate('usage', meter);
    // onReady runs after the environments' reconcile: what already runs is charged from now on.
    app.addHook('onReady', async () => meter.start());
    app.addHook('preClose', async () => meter.close());
  },
  { name: 'usage', dependencies: ['environments', 'terminals'] },
);
