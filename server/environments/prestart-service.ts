/**
 * Starting a group's environments ahead of a lesson ("Start all 30 now"): each enabled member's
 * environment in one region is started in the background — behind every user who waits at a page
 * (StartQueue.runInBackground), so a pre-start never starves people already working — and stops
 * again by the usual rule if nobody opens a terminal in it for the idle timeout.
 *
 * Progress lives in this server's memory (the admin's page polls the server that started it); a
 * pre-start of the same group and region while one runs returns that one instead of a second.
 */
import { randomUUID } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import type { EnvironmentKey, EnvironmentStatus } from '../../sandbox/index.js';
import { CoveError, errors } from '../errors.js';
import type { GroupRecord, UserRecord } from '../store/store.js';
import type { PrestartProgress } from '../protocol/api.js';
import type { EnvironmentOwner, EnvironmentPhase } from './environment-service.js';

export interface PrestartDeps {
  readonly groups: {
    get(id: string): Promise<GroupRecord | undefined>;
    members(id: string): Promise<string[]>;
  };
  readonly users: { get(id: string): Promise<UserRecord | undefined> };
  readonly environments: {
    ensure(
      owner: EnvironmentOwner,
      region: string,
      onPhase: (phase: EnvironmentPhase) => void,
      options: { background: boolean },
    ): Promise<EnvironmentStatus>;
  };
  /** Throws when the user has no shell time left this week (they are skipped, not started). */
  readonly usage: { assertTimeLeft(userId: string): Promise<void> };
  /** Stops the environment later if nobody has opened a terminal in it by then. */
  readonly stopWhenUnused: (key: EnvironmentKey) => void;
  readonly log: FastifyBaseLogger;
}

/** Finished pre-starts kept for their progress page; the oldest go first. */
const keptJobs = 50;
/** Failures listed per pre-start (the count is always exact). */
const keptFailures = 20;

interface Job {
  progress: PrestartProgress;
}

export class PrestartService {
  private readonly jobs = new Map<string, Job>();
  /** Pre-starts between the request and their first progress (members being read). */
  private readonly creating = new Map<string, Promise<PrestartProgress>>();

  constructor(private readonly deps: PrestartDeps) {}

  /**
   * Starts the group's environments in `region` (already checked to exist) and returns at once;
   * while one for the same group and region runs (or is being set up), returns that one.
   */
  start(groupId: string, region: string): Promise<PrestartProgress> {
    const running = [...this.jobs.values()].find(
      (job) => job.progress.groupId === groupId && job.progress.region === region && !job.progress.done,
    );
    if (running) return Promise.resolve({ ...running.progress });
    const key = `${groupId}\u0000${region}`;
    const pending = this.creating.get(key);
    if (pending) return pending;
    const created = this.create(groupId, region).finally(() => this.creating.delete(key));
    this.creating.set(key, created);
    return created;
  }

  private async create(groupId: string, region: string): Promise<PrestartProgress> {
    const group = await this.deps.groups.get(groupId);
    if (!group) throw errors.notFound('That group');
    const owners: EnvironmentOwner[] = [];
    for (const id of await this.deps.groups.members(groupId)) {
      const user = await this.deps.users.get(id);
      if (user && !user.disabled) owners.push({ id: user.id, username: user.username });
    }
    const job: Job = {
      progress: {
        id: randomUUID(),
        groupId,
        groupName: group.name,
        region,
        total: owners.length,
        started: 0,
        skipped: 0,
        failed: 0,
        failures: [],
        done: owners.length === 0,
        createdAt: new Date().toISOString(),
      },
    };
    this.keep(job);
    void Promise.all(owners.map((owner) => this.startOne(job, owner))).finally(() => {
      job.progress = { ...job.progress, done: true };
      this.deps.log.info(
        {
          groupId,
          region,
          total: job.progress.total,
          started: job.progress.started,
          skipped: job.progress.skipped,
          failed: job.progress.failed,
        },
        'pre-start finished',
      );
    });
    return { ...job.progress };
  }

  /** A pre-start's progress, or 404 when this server has none by that id. */
  get(id: string): PrestartProgress {
    const job = this.jobs.get(id);
    if (!job) throw errors.notFound('That pre-start');
    return { ...job.progress, failures: [...job.progress.failures] };
  }

  private async startOne(job: Job, owner: EnvironmentOwner): Promise<void> {
    const count = (field: 'started' | 'skipped' | 'failed', failure?: string) => {
      const { progress } = job;
      job.progress = {
        ...progress,
        [field]: progress[field] + 1,
        failures:
          failure && progress.failures.length < keptFailures
            ? [...progress.failures, { username: owner.username, message: failure }]
            : progress.failures,
      };
    };
    try {
      await this.deps.usage.assertTimeLeft(owner.id);
    } catch {
      count('skipped');
      return;
    }
    try {
      await this.deps.environments.ensure(owner, job.progress.region, () => {}, { background: true });
      this.deps.stopWhenUnused({ ownerId: owner.id, region: job.progress.region });
      count('started');
    } catch (error) {
      this.deps.log.warn({ err: error, ownerId: owner.id, region: job.progress.region }, 'pre-start failed');
      // Cove's own errors carry words meant for people; anything else (an engine's) gets plain ones.
      count(
        'failed',
        error instanceof CoveError
          ? error.message
          : 'The environment could not be started; see the server log.',
      );
    }
  }

  private keep(job: Job): void {
    this.jobs.set(job.progress.id, job);
    for (const [id, old] of this.jobs) {
      if (this.jobs.size <= keptJobs) break;
      if (old.progress.done) this.jobs.delete(id);
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    prestarts: PrestartService;
  }
}

export default fp(
  async (app) => {
    app.decorate(
      'prestarts',
      new PrestartService({
        groups: app.store.groups,
        users: app.store.users,
        environments: app.environments,
        usage: app.usage,
        stopWhenUnused: (key) => app.terminals.stopWhenUnused(key),
        log: app.log.child({ component: 'prestart' }),
      }),
    );
  },
  { name: 'prestarts', dependencies: ['environments', 'terminals', 'usage'] },
);
