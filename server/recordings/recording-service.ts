/**
 * Session recordings: which terminals are recorded (the policy an administrator sets on groups
 * and permission sets), the recording of each (an asciicast v2 file under
 * `dataDir/recordings`, named by a random id, never by anything a user chose), its record in the
 * store for search, and the retention sweep.
 *
 * A recording must never break or slow its terminal: problems (disk full, a slow disk, the size
 * bound) mark the recording incomplete and are audited once; the terminal carries on.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import { audit } from '../audit.js';
import { CoveError } from '../errors.js';
import { PeriodicJob } from '../periodic-job.js';
import { normalizeName } from '../protocol/api.js';
import type { TerminalTap } from '../terminals/terminal.js';
import type { RecordingQuery, RecordingRecord, RecordMode, StoreRepositories } from '../store/store.js';
import { AsciicastRecorder, type RecordingProblem } from './asciicast-recorder.js';
import { canRunFrom, RecordingThread, type SessionRecorder } from './recording-thread.js';

/** Recording ids are UUIDs: anything else (a path, `..`) is not one, whoever asks. */
export const recordingIdPattern = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const recordingId = new RegExp(recordingIdPattern);

const order: Record<RecordMode, number> = { off: 0, output: 1, 'output+input': 2 };

/** The most thorough of several policies: recording is on when any of them asks for it. */
export function strictestRecordMode(modes: readonly RecordMode[]): RecordMode {
  return modes.reduce<RecordMode>((a, b) => (order[b] > order[a] ? b : a), 'off');
}

export const recordingErrors = {
  /** The same answer for a missing recording and for someone who may not see recordings. */
  notFound: () =>
    new CoveError(
      'COVE_ERR_RECORDING_NOT_FOUND',
      404,
      'That recording does not exist (it may have expired).',
    ),
  fileMissing: () =>
    new CoveError(
      'COVE_ERR_RECORDING_FILE_MISSING',
      404,
      'The file of that recording is gone (deleted by hand, or the disk was full when it started). Its record is kept for the audit.',
    ),
} as const;

/** Who and what a terminal is, for its recording's record and header. */
export interface RecordedTerminal {
  readonly terminalId: string;
  readonly userId: string;
  /** Looked up when absent (a terminal re-adopted after a restart). */
  readonly username?: string;
  readonly region: string;
  readonly accountId?: string;
  readonly permissionSet?: string;
}

export interface RecordingServiceOptions {
  readonly store: Pick<StoreRepositories, 'recordings' | 'groups' | 'permissionSets' | 'users' | 'audit'>;
  /** Where recording files go (dataDir/recordings). */
  readonly dir: string;
  readonly maxBytes: number;
  readonly queueBytes: number;
  readonly retentionDays: number;
  readonly now: () => number;
  readonly log: Pick<FastifyBaseLogger, 'warn' | 'info'>;
  /** Write on a thread of its own (production), not on the event loop (default: false). */
  readonly thread?: boolean;
}

/** How many expired recordings one sweep deletes at most (the next sweep takes the rest). */
const sweepBatch = 500;

export class RecordingService {
  /** Recordings being written now: their ends are awaited at shutdown. */
  private readonly active = new Set<Promise<void>>();
  private readonly thread: RecordingThread | undefined;

  constructor(private readonly options: RecordingServiceOptions) {
    this.thread = options.thread ? new RecordingThread() : undefined;
  }

  /** Whether `userId`'s terminal for `permissionSet` (a plain shell when absent) is recorded. */
  async policyFor(userId: string, permissionSet?: string): Promise<RecordMode> {
    const { store } = this.options;
    const [groups, set] = await Promise.all([
      store.groups.groupsOf(userId),
      permissionSet ? store.permissionSets.getByName(permissionSet) : undefined,
    ]);
    return strictestRecordMode([...groups.map((g) => g.record), set?.record ?? 'off']);
  }

  /**
   * Starts recording a terminal and returns the tap its output goes through. Synchronous for the
   * caller: the file opens and the record is written in the background.
   */
  start(terminal: RecordedTerminal, mode: Exclude<RecordMode, 'off'>): TerminalTap {
    const { options } = this;
    const id = randomUUID();
    const location = `${id}.cast`;
    const startedAt = options.now();
    let reported = false;
    const report = (problem: RecordingProblem, error?: unknown): void => {
      if (error) options.log.warn({ err: error, recordingId: id, problem }, 'recording problem');
      if (reported) return;
      reported = true;
      void created.then(() =>
        audit(options.store, undefined, {
          action: 'recording.incomplete',
          target: id,
          details: { problem, terminalId: terminal.terminalId, userId: terminal.userId },
          actor: { id: null, name: 'system' },
        }).catch((e: unknown) => options.log.warn({ err: e }, 'could not audit a recording problem')),
      );
    };
    const created = (async () => {
      const username =
        terminal.username ?? (await options.store.users.get(terminal.userId))?.username ?? terminal.userId;
      await options.store.recordings.create({
        id,
        terminalId: terminal.terminalId,
        userId: terminal.userId,
        username,
        region: terminal.region,
        accountId: terminal.accountId ?? null,
        permissionSet: terminal.permissionSet ?? null,
        mode,
        startedAt,
        storage: 'file',
        location,
      });
    })().catch((error: unknown) =>
      options.log.warn({ err: error, recordingId: id }, 'could not record a recording'),
    );
    const recorder = mkdir(options.dir, { recursive: true, mode: 0o700 }).then((): SessionRecorder => {
      const settings = {
        path: join(options.dir, location),
        cols: 80,
        rows: 24,
        startedAt,
        title: `${terminal.username ?? terminal.userId} in ${terminal.region}${
          terminal.accountId ? ` as ${terminal.permissionSet ?? ''} on ${terminal.accountId}` : ''
        }`,
        env: { TERM: 'xterm-256color', SHELL: '/bin/bash' },
        input: mode === 'output+input',
        maxBytes: options.maxBytes,
        maxQueueBytes: options.queueBytes,
      };
      return this.thread
        ? this.thread.recorder(settings, report)
        : new AsciicastRecorder({ ...settings, onProblem: report });
    });
    // Until the directory exists (a few ms, once) events wait here, bounded like the queue.
    let early: ((r: SessionRecorder) => void)[] | undefined = [];
    let earlyBytes = 0;
    let ready: SessionRecorder | undefined;
    let failed = false;
    void recorder.then(
      (r) => {
        ready = r;
        for (const replay of early ?? []) replay(r);
        early = undefined;
      },
      (error: unknown) => {
        failed = true;
        early = undefined;
        report('write-failed', error);
      },
    );
    const through = (bytes: number, fn: (r: SessionRecorder) => void): void => {
      if (ready) fn(ready);
      else if (early && earlyBytes + bytes <= options.queueBytes) {
        earlyBytes += bytes;
        early.push(fn);
      }
    };
    let ended = false;
    return {
      output: (chunk) => through(chunk.length, (r) => r.output(chunk)),
      input: (chunk) => through(chunk.length, (r) => r.input(chunk)),
      resize: (cols, rows) => through(16, (r) => r.resize(cols, rows)),
      end: () => {
        if (ended) return;
        ended = true;
        const finished = (async () => {
          const result = failed
            ? { bytes: 0, complete: false }
            : await recorder.then((r) => r.close()).catch(() => ({ bytes: 0, complete: false }));
          await created;
          await options.store.recordings.finish(id, {
            endedAt: options.now(),
            bytes: result.bytes,
            complete: result.complete,
          });
        })()
          .catch((error: unknown) =>
            options.log.warn({ err: error, recordingId: id }, 'could not finish a recording'),
          )
          .finally(() => this.active.delete(finished));
        this.active.add(finished);
      },
    };
  }

  /** Search by who (a username), when and which identity; a name nobody has finds nothing. */
  async find(
    filter: Omit<RecordingQuery, 'userId'> & { readonly username?: string | undefined },
  ): Promise<RecordingRecord[]> {
    const { username, ...rest } = filter;
    let userId: string | undefined;
    if (username !== undefined) {
      const user = await this.options.store.users.getByUsername(normalizeName(username));
      if (!user) return [];
      userId = user.id;
    }
    return this.options.store.recordings.search({ ...rest, ...(userId ? { userId } : {}) });
  }

  async get(id: string): Promise<RecordingRecord> {
    if (!recordingId.test(id)) throw recordingErrors.notFound();
    const recording = await this.options.store.recordings.get(id);
    if (!recording) throw recordingErrors.notFound();
    return recording;
  }

  /** The recording's file as a stream, with its size; 404 when the record or file is missing. */
  async open(id: string): Promise<{ recording: RecordingRecord; size: number; stream: Readable }> {
    const recording = await this.get(id);
    const path = this.pathOf(recording);
    const size = await stat(path).then(
      (s) => (s.isFile() ? s.size : undefined),
      () => undefined,
    );
    if (size === undefined) throw recordingErrors.fileMissing();
    return { recording, size, stream: createReadStream(path) };
  }

  /** Deletes recordings past their retention (files first, then records); returns how many went. */
  async sweep(): Promise<number> {
    const { store, retentionDays, now } = this.options;
    const cutoff = now() - retentionDays * 86_400_000;
    const expired = await store.recordings.startedBefore(cutoff, sweepBatch);
    let deleted = 0;
    for (const recording of expired) {
      try {
        await rm(this.pathOf(recording), { force: true });
        if (await store.recordings.delete(recording.id)) deleted++;
      } catch (error) {
        this.options.log.warn(
          { err: error, recordingId: recording.id },
          'could not delete an expired recording',
        );
      }
    }
    if (deleted > 0)
      await audit(store, undefined, {
        action: 'recording.expired',
        details: { count: deleted, retentionDays },
        actor: { id: null, name: 'system' },
      });
    return deleted;
  }

  /** Waits for recordings that are ending to be written and recorded (shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.active]);
    await this.thread?.dispose();
  }

  /** The file of a record: its location is a name Cove made, checked again here all the same. */
  private pathOf(recording: RecordingRecord): string {
    if (!/^[0-9a-f-]{36}\.cast$/.test(recording.location)) throw recordingErrors.fileMissing();
    return join(this.options.dir, recording.location);
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    recordings: RecordingService;
  }
}

const sweepIntervalMs = 3_600_000;

export default fp(
  async (app) => {
    const { config } = app;
    const service = new RecordingService({
      store: app.store,
      dir: resolve(config.dataDir, 'recordings'),
      maxBytes: config.recordings.maxBytes,
      queueBytes: config.recordings.queueBytes,
      retentionDays: config.recordings.retentionDays,
      now: app.now,
      log: app.log.child({ component: 'recordings' }),
      // A thread of its own when built; on the event loop from the TypeScript sources (tests).
      thread: canRunFrom(import.meta.url),
    });
    app.decorate('recordings', service);
    // Once an hour across every instance sharing the store (the files are on the shared data
    // directory's instance; see README "Recordings").
    const sweep = new PeriodicJob({
      name: 'recordings.retention',
      intervalMs: sweepIntervalMs,
      store: app.store,
      holder: config.instanceId,
      now: app.now,
      log: app.log,
      run: () => service.sweep(),
    });
    app.addHook('onReady', async () => sweep.start());
    app.addHook('onClose', async () => {
      await sweep.close();
      await service.drain();
    });
  },
  { name: 'recordings' },
);
