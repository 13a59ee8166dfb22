/**
 * Terminals in memory, keyed by an unguessable id and bound to their owner: looking up another
 * user's id behaves exactly like a missing one. Creating a terminal starts its environment in
 * the background (the page follows the phases over the WebSocket) and opens `bash -l` with a TTY
 * under a session holder in the environment (named after the terminal id) through the driver.
 * When a user's last terminal in a region is gone, the environment is stopped (never removed).
 * Sockets are tracked by session so a revoked or expired session closes them with 4401.
 *
 * Surviving restarts: each terminal is recorded in the store (id, owner, region, binding). A
 * server shutdown leaves the shells running; the next start re-adopts every recorded terminal
 * whose holder still runs in its (running) environment. A held shell the store does not know
 * (made up inside the container) is never adopted, and the binding always comes from the store.
 * When a shell's stream is lost while its holder lives on (engine restart), the terminal reopens
 * it with backoff; its pages get 4503 meanwhile and reconnect.
 */
import { resolve } from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { CoveError } from '../errors.js';
import { PhaseTimer } from '../phase-timer.js';
import { CloseCode } from '../protocol/terminal-wire.js';
import type {
  EnvironmentChange,
  EnvironmentOwner,
  EnvironmentService,
  EnvironmentPhase,
  PhaseDetail,
} from '../environments/environment-service.js';
import type { Disposable, EnvironmentKey, Shell } from '../../sandbox/index.js';
import type { RecordMode, TerminalRecord, TerminalRepository } from '../store/store.js';
import type { RecordedTerminal } from '../recordings/recording-service.js';
import {
  Terminal,
  type CloseReason,
  type TerminalTap,
  type TerminalTimings,
  type TerminalTraffic,
} from './terminal.js';
import { terminalId } from './terminal-id.js';
import { ScreenSnapshotFiles } from './screen-snapshot-files.js';
import type { TerminalSocket } from './terminal-socket.js';

export interface TerminalBinding {
  readonly accountId?: string;
  readonly permissionSet?: string;
}

/** Extra environment for a new shell (credentials endpoint and token, once that exists). */
export type ShellEnvProvider = (
  owner: EnvironmentOwner,
  region: string,
  binding: TerminalBinding,
  terminalId: string,
) => Promise<Record<string, string>>;

export interface TerminalServiceOptions {
  readonly environments: EnvironmentService;
  readonly sandbox: Config['sandbox'];
  readonly log: FastifyBaseLogger;
  readonly now?: () => number;
  readonly shellEnv?: ShellEnvProvider;
  /** Where terminals are recorded so they survive a restart; in memory only when absent. */
  readonly records?: TerminalRepository;
  readonly mirrorScrollbackLines?: number;
  /** Where screens wait across a graceful restart; not kept when absent. */
  readonly screens?: ScreenSnapshotFiles;
  /** Counts every terminal's bytes (the metrics). */
  readonly traffic?: TerminalTraffic;
  /** Records the sessions the policy says to record (see RecordingService). */
  readonly recordings?: {
    policyFor(userId: string, permissionSet?: string): Promise<RecordMode>;
    start(terminal: RecordedTerminal, mode: Exclude<RecordMode, 'off'>): TerminalTap;
  };
}

export const shellCommand = ['bash', '-l'] as const;

const userMessages: Record<string, string> = {
  COVE_ERR_SANDBOX_IMAGE_MISSING:
    'The environment image is not installed on this Cove server. Ask your administrator to build it.',
  COVE_ERR_SANDBOX_UNAVAILABLE: 'Cove cannot reach the environment backend right now. Try again in a minute.',
};

/** Reopening a lost shell: first retry soon, then at most this far apart. */
const reopenFirstDelayMs = 250;
const reopenMaxDelayMs = 5_000;
/** How long a shell killed by a signal waits for its environment's death to show in the engine. */
const deathSettleMs = 1_000;

export const terminalErrors = {
  limit: (max: number, region: string) =>
    new CoveError(
      'COVE_ERR_TERMINAL_LIMIT',
      429,
      `You have ${max} open terminals in ${region}; close one to open another.`,
      { details: { max, region } },
    ),
  notFound: () =>
    new CoveError(
      'COVE_ERR_TERMINAL_NOT_FOUND',
      404,
      'That terminal does not exist (it may have closed). Open a new one.',
    ),
  backendUnavailable: (region: string) =>
    new CoveError(
      'COVE_ERR_ENVIRONMENT_UNAVAILABLE',
      503,
      `Cove cannot reach the environment backend in ${region} right now. Your open shells keep running; try again in a minute.`,
      { details: { region } },
    ),
} as const;

const environmentStoppedMessage = (reason: string): string =>
  reason === 'oom'
    ? 'Your environment stopped (out of memory). Restart it to continue; your home is kept.'
    : 'Your environment stopped. Restart it to continue; your home is kept.';

/** What a page shows while its start waits for a slot. */
export const queuedMessage = (ahead: number): string =>
  ahead === 0
    ? 'Starting your environment — you are next…'
    : `Starting your environment — ${ahead} ahead of you…`;

/** The environment being ready is not the terminal being ready: its shell is still to open. */
const reportPhase = (terminal: Terminal, phase: EnvironmentPhase, detail?: PhaseDetail): void =>
  phase === 'queued'
    ? terminal.setPhase('queued', queuedMessage(detail?.ahead ?? 0))
    : terminal.setPhase(phase === 'ready' ? 'attaching' : phase);

export class TerminalService {
  private readonly terminals = new Map<string, Terminal>();
  private readonly sockets = new Set<TerminalSocket>();
  private readonly owners = new Map<string, EnvironmentOwner>();
  private readonly subscription: Disposable;
  private readonly openedListeners = new Set<(terminal: Terminal) => void>();
  private readonly attachedListeners = new Set<(terminal: Terminal) => void>();
  private readonly timings: TerminalTimings;
  private readonly now: () => number;
  private closing = false;
  private readonly orphanTimers = new Set<NodeJS.Timeout>();
  private readonly reopenTimers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: TerminalServiceOptions) {
    const s = options.sandbox;
    this.timings = {
      graceMs: s.graceS * 1000,
      idleTimeoutMs: s.idleTimeoutS * 1000,
      idleWarningMs: s.idleWarningS * 1000,
      maxAgeMs: s.maxSessionAgeS * 1000,
    };
    this.now = options.now ?? Date.now;
    this.subscription = options.environments.onChange((change) => this.onEnvironmentChange(change));
  }

  /** Registers a terminal and starts its environment and shell in the background. */
  create(
    owner: EnvironmentOwner,
    region: string,
    binding: TerminalBinding = {},
    record: RecordMode = 'off',
  ): Terminal {
    const max = this.options.sandbox.maxTerminalsPerUser;
    if (this.list(owner.id, region).length >= max) throw terminalErrors.limit(max, region);
    const terminal = this.register(
      {
        id: terminalId.generate(),
        ownerId: owner.id,
        region,
        ...binding,
        createdAt: this.now(),
      },
      record,
      owner.username,
    );
    this.owners.set(owner.id, owner);
    this.persist(terminal);
    void this.start(terminal, owner, binding);
    this.emit(this.openedListeners, terminal);
    return terminal;
  }

  /** Is this the owner's live terminal in `region`? Cheap (memory only); false for anyone else's. */
  isLive(ownerId: string, region: string, id: string): boolean {
    const terminal = this.get(ownerId, id);
    return terminal !== undefined && terminal.region === region;
  }

  private register(record: TerminalRecord, mode: RecordMode = 'off', username?: string): Terminal {
    const recordings = mode === 'off' ? undefined : this.options.recordings;
    const recorded = mode === 'off' ? undefined : mode;
    const tap =
      recordings && recorded
        ? recordings.start(
            {
              terminalId: record.id,
              userId: record.ownerId,
              ...(username ? { username } : {}),
              region: record.region,
              ...(record.accountId ? { accountId: record.accountId } : {}),
              ...(record.permissionSet ? { permissionSet: record.permissionSet } : {}),
            },
            recorded,
          )
        : undefined;
    const terminal = new Terminal({
      id: record.id,
      ownerId: record.ownerId,
      region: record.region,
      ...(record.accountId ? { accountId: record.accountId } : {}),
      ...(record.permissionSet ? { permissionSet: record.permissionSet } : {}),
      createdAt: record.createdAt,
      timings: this.timings,
      now: this.now,
      ...(this.options.mirrorScrollbackLines
        ? { mirrorScrollbackLines: this.options.mirrorScrollbackLines }
        : {}),
      onClosed: (t) => this.onTerminalClosed(t),
      onAttached: (t) => this.emit(this.attachedListeners, t),
      onError: (error, what) =>
        this.options.log.warn({ err: error, terminalId: record.id, what }, 'terminal problem'),
      ...(this.options.traffic ? { traffic: this.options.traffic } : {}),
      ...(tap && recorded ? { tap, recorded } : {}),
    });
    this.terminals.set(record.id, terminal);
    return terminal;
  }

  private persist(terminal: Terminal): void {
    this.options.records
      ?.save({
        id: terminal.id,
        ownerId: terminal.ownerId,
        region: terminal.region,
        ...(terminal.accountId ? { accountId: terminal.accountId } : {}),
        ...(terminal.permissionSet ? { permissionSet: terminal.permissionSet } : {}),
        createdAt: terminal.createdAt,
      })
      .catch((error: unknown) =>
        this.options.log.warn({ err: error, terminalId: terminal.id }, 'could not record a terminal'),
      );
  }

  /**
   * After a restart: re-adopts every recorded terminal whose held shell still runs in its
   * running environment, and forgets the rest. Returns how many were adopted.
   */
  async adopt(): Promise<number> {
    const records = this.options.records;
    if (!records) return 0;
    const byEnvironment = new Map<string, TerminalRecord[]>();
    for (const record of await records.list()) {
      const key = `${record.region}\u0000${record.ownerId}`;
      byEnvironment.set(key, [...(byEnvironment.get(key) ?? []), record]);
    }
    const running = new Set(
      this.options.environments
        .list()
        .filter((s) => s.state === 'running')
        .map((s) => `${s.region}\u0000${s.ownerId}`),
    );
    let adopted = 0;
    for (const [key, group] of byEnvironment) {
      const first = group[0] as TerminalRecord;
      let held: string[] = [];
      if (running.has(key) && this.options.environments.hasRegion(first.region)) {
        try {
          held = await this.options.environments.listHeldShells({
            ownerId: first.ownerId,
            region: first.region,
          });
        } catch (error) {
          this.options.log.warn({ err: error, region: first.region }, 'could not list held shells');
        }
      }
      for (const record of group) {
        if (!held.includes(record.id) || this.terminals.has(record.id)) {
          await records.delete(record.id).catch(() => undefined);
          continue;
        }
        // Recorded from here on by the policy as it is now; what ran while no server was up is not.
        const mode = await this.recordModeFor(record);
        const terminal = this.register(record, mode);
        const screen = await this.options.screens?.take(record.id).catch(() => undefined);
        if (screen) terminal.restoreScreen(screen);
        terminal.setPhase('reconnecting');
        this.reopen(terminal);
        adopted++;
      }
    }
    // Screens of terminals that did not survive are nobody's any more.
    await this.options.screens
      ?.clear()
      .catch((error: unknown) => this.options.log.warn({ err: error }, 'could not delete saved screens'));
    return adopted;
  }

  private async recordModeFor(record: TerminalRecord): Promise<RecordMode> {
    if (!this.options.recordings) return 'off';
    try {
      return await this.options.recordings.policyFor(record.ownerId, record.permissionSet);
    } catch (error) {
      this.options.log.warn({ err: error, terminalId: record.id }, 'could not read the recording policy');
      return 'off';
    }
  }

  /** Called for every new terminal (e.g. to record that the home is in use). */
  onOpened(listener: (terminal: Terminal) => void): Disposable {
    this.openedListeners.add(listener);
    return { dispose: () => this.openedListeners.delete(listener) };
  }

  /** Called whenever a page attaches to a terminal (a notice sent now reaches someone). */
  onAttached(listener: (terminal: Terminal) => void): Disposable {
    this.attachedListeners.add(listener);
    return { dispose: () => this.attachedListeners.delete(listener) };
  }

  /** Every open terminal of every user. */
  all(): Terminal[] {
    return [...this.terminals.values()].filter((t) => !t.closed);
  }

  /** Closes a user's terminals in one region (restart, home deleted); pages get `exit` with `reason`. */
  closeAllIn(ownerId: string, region: string, reason: CloseReason, notice?: string): number {
    const terminals = this.list(ownerId, region);
    for (const terminal of terminals) terminal.close(reason, null, notice);
    return terminals.length;
  }

  private emit(listeners: Set<(terminal: Terminal) => void>, terminal: Terminal): void {
    for (const listener of listeners) {
      try {
        listener(terminal);
      } catch (error) {
        this.options.log.error({ err: error, terminalId: terminal.id }, 'terminal listener failed');
      }
    }
  }

  /** The terminal when it exists and belongs to `ownerId`; otherwise undefined, either way. */
  get(ownerId: string, id: string): Terminal | undefined {
    const terminal = this.terminals.get(id);
    return terminal && terminal.ownerId === ownerId && !terminal.closed ? terminal : undefined;
  }

  list(ownerId: string, region?: string): Terminal[] {
    return [...this.terminals.values()].filter(
      (t) => t.ownerId === ownerId && (region === undefined || t.region === region) && !t.closed,
    );
  }

  /** Open terminals per region, every owner's (the metrics). */
  countByRegion(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const t of this.terminals.values())
      if (!t.closed) counts.set(t.region, (counts.get(t.region) ?? 0) + 1);
    return counts;
  }

  /** Closes one of the owner's terminals; false when there is no such terminal for them. */
  close(ownerId: string, id: string): boolean {
    const terminal = this.get(ownerId, id);
    if (!terminal) return false;
    terminal.close('closed', null);
    return true;
  }

  /** Closes every terminal of a user (disabled, deleted). */
  closeAllFor(userId: string, reason: CloseReason, notice?: string): void {
    for (const socket of [...this.sockets]) {
      if (socket.userId === userId)
        socket.close(CloseCode.notAuthenticated, 'Your session ended. Sign in again.');
    }
    for (const terminal of this.list(userId)) terminal.close(reason, null, notice);
  }

  /** Tracks an open socket until it closes; closes it with 4401 when its session expires. */
  track(socket: TerminalSocket, sessionExpiresAt: number): void {
    this.sockets.add(socket);
    const delay = Math.min(Math.max(0, sessionExpiresAt - this.now()), 2 ** 31 - 1);
    const timer = setTimeout(
      () => socket.close(CloseCode.notAuthenticated, 'Your session expired. Sign in again.'),
      delay,
    );
    timer.unref();
    socket.onClosed(() => {
      clearTimeout(timer);
      this.sockets.delete(socket);
    });
  }

  /** Closes the sockets of ended sessions with 4401 (the terminals live on for their grace). */
  sessionsRevoked(idHashes: readonly string[]): void {
    const revoked = new Set(idHashes);
    for (const socket of [...this.sockets]) {
      if (revoked.has(socket.sessionIdHash))
        socket.close(CloseCode.notAuthenticated, 'Your session ended. Sign in again.');
    }
  }

  get socketCount(): number {
    return this.sockets.size;
  }

  /**
   * After a restart the terminals are gone but their environments may still run: an environment
   * still without a terminal after the idle timeout is stopped (never removed), as it would have
   * been had the server stayed up. (Not the shorter grace: a server that shares its engine with
   * others, as test servers do, must not stop their environments under them.)
   */
  stopOrphansWhenIdle(): void {
    for (const status of this.options.environments.list())
      if (status.state === 'running')
        this.stopWhenUnused(status, 'could not stop an environment left from before');
  }

  /**
   * Stops (never removes) an environment that still has no terminal once the idle timeout has
   * passed: one left from before a restart, or one an admin started ahead of a lesson.
   */
  stopWhenUnused(key: EnvironmentKey, failure = 'could not stop an unused environment'): void {
    const timer = setTimeout(() => {
      this.orphanTimers.delete(timer);
      if (this.closing || this.list(key.ownerId, key.region).length > 0) return;
      this.options.environments.stopWhenIdle(key).catch((error: unknown) => {
        this.options.log.warn({ err: error, region: key.region }, failure);
      });
    }, this.timings.idleTimeoutMs);
    timer.unref();
    this.orphanTimers.add(timer);
  }

  /**
   * Server shutdown: sockets get 1001 (pages reconnect), shells keep running in their holders
   * and stay recorded for the next start; environments are left running.
   */
  async shutdown(): Promise<void> {
    this.closing = true;
    for (const timer of [...this.orphanTimers, ...this.reopenTimers]) clearTimeout(timer);
    this.orphanTimers.clear();
    this.reopenTimers.clear();
    this.subscription.dispose();
    for (const socket of [...this.sockets])
      socket.close(CloseCode.goingAway, 'Cove is restarting. Reconnect in a moment.');
    await this.saveScreens();
    for (const terminal of this.terminals.values()) terminal.release();
    this.terminals.clear();
  }

  /** Writes every live terminal's screen for the next start (see ScreenSnapshotFiles). */
  private async saveScreens(): Promise<void> {
    const screens = this.options.screens;
    if (!screens) return;
    await Promise.all(
      [...this.terminals.values()].map(async (terminal) => {
        try {
          const screen = await terminal.saveScreen();
          if (screen) await screens.save(terminal.id, screen);
        } catch (error) {
          this.options.log.warn({ err: error, terminalId: terminal.id }, 'could not save a screen');
        }
      }),
    );
  }

  private async start(terminal: Terminal, owner: EnvironmentOwner, binding: TerminalBinding): Promise<void> {
    const key = { ownerId: owner.id, region: terminal.region };
    const timer = new PhaseTimer();
    try {
      await this.options.environments.ensure(owner, terminal.region, (phase, detail) =>
        reportPhase(terminal, phase, detail),
      );
      timer.lap('environment');
      if (terminal.closed) return;
      const env = {
        COVE_TERMINAL_ID: terminal.id,
        ...(binding.accountId ? { COVE_ACCOUNT_ID: binding.accountId } : {}),
        ...(binding.permissionSet ? { COVE_PERMISSION_SET: binding.permissionSet } : {}),
        ...(this.options.shellEnv
          ? await this.options.shellEnv(owner, terminal.region, binding, terminal.id)
          : {}),
      };
      timer.lap('shellEnv');
      const shellOptions = {
        cmd: [...shellCommand],
        env,
        cols: 80,
        rows: 24,
        holder: { name: terminal.id, create: true },
      };
      let shell;
      try {
        shell = await this.options.environments.openShell(key, shellOptions);
      } catch (error) {
        // The environment may have stopped since we last saw it: ensure once more, then retry.
        if ((error as { code?: string }).code !== 'COVE_ERR_SANDBOX_NOT_RUNNING') throw error;
        await this.options.environments.ensure(owner, terminal.region, (phase, detail) =>
          reportPhase(terminal, phase, detail),
        );
        shell = await this.options.environments.openShell(key, shellOptions);
      }
      timer.lap('shell');
      this.wire(terminal, shell);
      this.options.log.debug({ terminalId: terminal.id, ms: timer.laps() }, 'terminal shell opened');
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      this.options.log.error(
        { err: error, terminalId: terminal.id, region: terminal.region },
        'terminal start failed',
      );
      // Coded errors (e.g. the host is out of space for homes) already carry words for the user.
      const coded = error instanceof CoveError ? error : undefined;
      const message =
        coded?.message ??
        userMessages[code] ??
        'Your environment could not be started. Try again; if it keeps happening, tell your administrator.';
      terminal.notify({ type: 'error', code: coded?.code ?? 'COVE_ERR_ENVIRONMENT_UNAVAILABLE', message });
      terminal.close('failed', null);
    }
  }

  private wire(terminal: Terminal, shell: Shell): void {
    terminal.shellOpened(shell);
    void shell.exited.then(
      (code) => this.onShellExit(terminal, code),
      () => this.onShellExit(terminal, null),
    );
    void shell.detached?.then(() => {
      if (terminal.closed || this.closing) return;
      this.options.log.info({ terminalId: terminal.id }, 'terminal stream lost; reopening its held shell');
      terminal.shellLost(shell);
      this.reopen(terminal);
    });
  }

  /**
   * Opens a terminal's held shell again (after a restart or a lost stream), never a new one:
   * retries with backoff while the backend is unreachable, gives up when the environment or the
   * held shell is gone, or when the terminal closes meanwhile (grace, user).
   */
  private reopen(terminal: Terminal, attempt = 0): void {
    const key = { ownerId: terminal.ownerId, region: terminal.region };
    const delayMs = attempt === 0 ? 0 : Math.min(reopenMaxDelayMs, reopenFirstDelayMs * 2 ** (attempt - 1));
    const timer = setTimeout(() => {
      this.reopenTimers.delete(timer);
      if (terminal.closed || this.closing) return;
      this.options.environments
        .openShell(key, {
          cmd: [...shellCommand],
          cols: 80,
          rows: 24,
          // What the mirror has not seen yet: printed while no server (or no stream) was attached.
          holder: { name: terminal.id, create: false, from: terminal.outputOffset },
        })
        .then(
          (shell) => {
            if (this.closing) {
              shell.stream.destroy();
              return;
            }
            this.wire(terminal, shell);
          },
          (error: unknown) => {
            if (terminal.closed || this.closing) return;
            if ((error as { code?: string }).code === 'COVE_ERR_SANDBOX_NOT_RUNNING') {
              terminal.close('environment-stopped', null, environmentStoppedMessage('died'));
              return;
            }
            this.options.log.warn(
              { err: error, terminalId: terminal.id, attempt },
              'could not reopen a held shell; retrying',
            );
            this.reopen(terminal, attempt + 1);
          },
        );
    }, delayMs);
    timer.unref();
    this.reopenTimers.add(timer);
  }

  /**
   * A shell killed by a signal may mean its environment died (an OOM kill of PID 1 ends every
   * shell); ask the backend before telling the user, so they read why rather than just "exited".
   */
  private async onShellExit(terminal: Terminal, code: number | null): Promise<void> {
    if (terminal.closed) return;
    if (code !== null && code < 128) {
      terminal.close('exit', code);
      return;
    }
    try {
      const key = { ownerId: terminal.ownerId, region: terminal.region };
      let status = await this.options.environments.status(key);
      // A killed container's execs end a moment before the engine reports it stopped: look again.
      if (status.state === 'running') {
        await new Promise((resolve) => setTimeout(resolve, deathSettleMs).unref());
        if (terminal.closed) return;
        status = await this.options.environments.status(key);
      }
      if (status.state !== 'running') {
        terminal.close('environment-stopped', code, environmentStoppedMessage(status.stopReason ?? 'died'));
        return;
      }
    } catch (error) {
      this.options.log.warn(
        { err: error, terminalId: terminal.id },
        'could not check the environment after a shell exit',
      );
    }
    terminal.close('exit', code);
  }

  private onEnvironmentChange(change: EnvironmentChange): void {
    const terminals = this.list(change.ownerId, change.region);
    if (change.kind === 'oom') {
      for (const terminal of terminals)
        terminal.notify({
          type: 'notice',
          kind: 'info',
          message: 'A process in your environment was stopped because it ran out of memory.',
        });
      return;
    }
    for (const terminal of terminals)
      terminal.close('environment-stopped', null, environmentStoppedMessage(change.reason));
  }

  private onTerminalClosed(terminal: Terminal): void {
    this.terminals.delete(terminal.id);
    this.options.records
      ?.delete(terminal.id)
      .catch((error: unknown) =>
        this.options.log.warn({ err: error, terminalId: terminal.id }, 'could not forget a terminal'),
      );
    if (this.closing) return;
    if (this.list(terminal.ownerId, terminal.region).length > 0) return;
    if (terminal.exitInfo?.reason === 'environment-stopped') return;
    const key = { ownerId: terminal.ownerId, region: terminal.region };
    this.options.environments.stopWhenIdle(key).catch((error: unknown) => {
      this.options.log.warn(
        { err: error, region: key.region },
        'could not stop environment after its last terminal',
      );
    });
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    terminals: TerminalService;
  }
}

export interface TerminalPluginOptions {
  readonly shellEnv?: ShellEnvProvider;
}

export default fp(
  async (app, opts: TerminalPluginOptions) => {
    const service = new TerminalService({
      environments: app.environments,
      sandbox: app.config.sandbox,
      log: app.log.child({ component: 'terminals' }),
      now: app.now,
      records: app.store.terminals,
      mirrorScrollbackLines: app.config.terminals.mirrorScrollbackLines,
      screens: new ScreenSnapshotFiles(resolve(app.config.dataDir, 'run', 'screens')),
      ...(opts.shellEnv ? { shellEnv: opts.shellEnv } : {}),
      traffic: {
        output: (bytes) => app.metrics.terminalOutput(bytes),
        input: (bytes) => app.metrics.terminalInput(bytes),
      },
      recordings: app.recordings,
    });
    app.decorate('terminals', service);
    app.metrics.countTerminals(() => service.countByRegion());
    const revoked = app.sessions.onRevoked((idHashes, userId) => {
      service.sessionsRevoked(idHashes);
      // A disabled or deleted user loses their terminals too, not just their sockets.
      void app.store.users
        .get(userId)
        .then((user) => {
          if (!user || user.disabled) service.closeAllFor(userId, 'revoked');
        })
        .catch((error: unknown) => app.log.warn({ err: error }, 'could not check a revoked user'));
    });
    // Runs after the environments plugin's own onReady (registration order), i.e. after reconcile.
    app.addHook('onReady', async () => {
      const adopted = await service.adopt().catch((error: unknown) => {
        app.log.warn({ err: error }, 'could not re-adopt terminals');
        return 0;
      });
      if (adopted > 0) app.log.info({ terminals: adopted }, 'terminals re-adopted');
      service.stopOrphansWhenIdle();
    });
    app.addHook('preClose', async () => {
      revoked.dispose();
      await service.shutdown();
    });
  },
  { name: 'terminals', dependencies: ['auth', 'environments', 'metrics', 'recordings'] },
);
