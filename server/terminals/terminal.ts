/**
 * One shell in an environment (a tab). It outlives its WebSocket: while detached it keeps reading
 * output into a bounded replay buffer, and it is killed when the grace period ends, after the idle
 * timeout (no input; output does not count), at its maximum age, or when its shell exits.
 * Every timer, listener and the shell itself are owned here and disposed in `close`.
 */
import type { Shell } from '../../sandbox/sandbox-driver.js';
import type { ServerEvent, TerminalPhase } from '../protocol/terminal-wire.js';
import { ReplayBuffer } from './replay-buffer.js';
import { TerminalStateMachine, type TerminalState } from './terminal-state.js';

/** The page side of a terminal: one WebSocket, or a fake in tests. */
export interface TerminalConnection {
  /** Raw PTY output for the page. */
  output(chunk: Buffer): void;
  event(event: ServerEvent): void;
  close(code: number, reason: string): void;
}

export interface TerminalTimings {
  readonly graceMs: number;
  readonly idleTimeoutMs: number;
  readonly idleWarningMs: number;
  readonly maxAgeMs: number;
}

/** Why a terminal closed; sent as the `exit` event's `reason`. */
export type CloseReason =
  | 'exit'
  | 'closed'
  | 'idle'
  | 'max-age'
  | 'grace'
  | 'environment-stopped'
  | 'revoked'
  | 'failed'
  | 'shutdown'
  | 'restarted'
  | 'home-deleted';

export interface TerminalInit {
  readonly id: string;
  readonly ownerId: string;
  readonly region: string;
  readonly accountId?: string;
  readonly permissionSet?: string;
  readonly timings: TerminalTimings;
  readonly replayBytes?: number;
  readonly now?: () => number;
  /** Called once, after the terminal has closed. */
  readonly onClosed?: (terminal: Terminal) => void;
  /** Called each time a page attaches (after it got the phase and the replay). */
  readonly onAttached?: (terminal: Terminal) => void;
  readonly onError?: (error: unknown, what: string) => void;
}

/** Input typed while the shell is still starting is kept, up to this much. */
const maxEarlyInputBytes = 64 * 1024;

const minutes = (ms: number): string => {
  const m = Math.round(ms / 60_000);
  return m >= 1 ? `${m} minute${m === 1 ? '' : 's'}` : `${Math.round(ms / 1000)} seconds`;
};

export class Terminal {
  readonly id: string;
  readonly ownerId: string;
  readonly region: string;
  readonly accountId: string | undefined;
  readonly permissionSet: string | undefined;
  readonly createdAt: number;

  private readonly machine = new TerminalStateMachine();
  private readonly replay: ReplayBuffer;
  private readonly now: () => number;
  private shell: Shell | undefined;
  private connection: TerminalConnection | undefined;
  private phase: TerminalPhase = 'starting';
  private size = { cols: 80, rows: 24 };
  private earlyInput: Buffer[] = [];
  private earlyInputBytes = 0;
  private lastInputAt: number;
  private idleWarned = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly ageTimer: NodeJS.Timeout;
  private outputPaused = false;
  private exit: { code: number | null; reason: CloseReason } | undefined;

  constructor(private readonly init: TerminalInit) {
    this.id = init.id;
    this.ownerId = init.ownerId;
    this.region = init.region;
    this.accountId = init.accountId;
    this.permissionSet = init.permissionSet;
    this.now = init.now ?? Date.now;
    this.createdAt = this.now();
    this.lastInputAt = this.createdAt;
    this.replay = new ReplayBuffer(init.replayBytes);
    this.ageTimer = setTimeout(() => this.close('max-age', null), init.timings.maxAgeMs);
    this.ageTimer.unref();
    this.scheduleIdle(init.timings.idleTimeoutMs - init.timings.idleWarningMs);
    this.startGrace();
  }

  get state(): TerminalState {
    return this.machine.state;
  }

  get attached(): boolean {
    return this.connection !== undefined;
  }

  get closed(): boolean {
    return this.machine.state === 'closed';
  }

  /** Reports a start-up phase (creating, starting, ready) to the page. */
  setPhase(phase: TerminalPhase): void {
    if (this.closed) return;
    this.phase = phase;
    this.connection?.event({ type: 'status', phase });
  }

  /**
   * Binds a connection; a previous one is closed (one page drives a terminal at a time). The new
   * page gets the current phase and the replay buffer, so it repaints recent output.
   */
  attach(connection: TerminalConnection): boolean {
    if (this.closed) return false;
    const previous = this.connection;
    if (previous) {
      this.connection = undefined;
      previous.close(1000, 'This terminal was opened in another window.');
    }
    this.connection = connection;
    this.clearGrace();
    if (this.machine.state === 'detached') this.machine.moveTo('attached');
    connection.event({ type: 'status', phase: this.machine.state === 'starting' ? this.phase : 'ready' });
    const replay = this.replay.snapshot();
    if (replay.length > 0) connection.output(replay);
    this.init.onAttached?.(this);
    return true;
  }

  /** Unbinds `connection` if it is the current one; the grace period starts. */
  detach(connection: TerminalConnection): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    this.resumeOutput();
    if (this.machine.state === 'attached') this.machine.moveTo('detached');
    if (!this.closed) this.startGrace();
  }

  /**
   * The shell is open: wire its output, replay early input, apply the latest size. Its exit is
   * the owner's to watch (it may mean the whole environment stopped).
   */
  shellOpened(shell: Shell): void {
    if (this.closed) {
      void shell.kill().catch((error: unknown) => this.init.onError?.(error, 'kill shell'));
      return;
    }
    this.shell = shell;
    this.machine.moveTo(this.connection ? 'attached' : 'detached');
    this.phase = 'ready';
    this.connection?.event({ type: 'status', phase: 'ready' });
    shell.stream.on('data', (chunk: Buffer) => {
      this.replay.push(chunk);
      this.connection?.output(chunk);
    });
    shell.stream.on('error', (error: unknown) => this.init.onError?.(error, 'shell stream'));
    if (this.outputPaused) shell.stream.pause();
    for (const chunk of this.earlyInput) shell.stream.write(chunk);
    this.earlyInput = [];
    this.earlyInputBytes = 0;
    void shell
      .resize(this.size.cols, this.size.rows)
      .catch((error: unknown) => this.init.onError?.(error, 'resize'));
  }

  input(data: Buffer): void {
    if (this.closed) return;
    this.lastInputAt = this.now();
    // The page clears its own warning on input; the next warning needs a fresh idle period.
    this.idleWarned = false;
    if (this.shell) {
      this.shell.stream.write(data);
    } else if (this.earlyInputBytes + data.length <= maxEarlyInputBytes) {
      this.earlyInput.push(data);
      this.earlyInputBytes += data.length;
    }
  }

  resize(cols: number, rows: number): void {
    if (this.closed) return;
    this.size = { cols, rows };
    if (this.shell)
      void this.shell.resize(cols, rows).catch((error: unknown) => this.init.onError?.(error, 'resize'));
  }

  /** Flow control: stop reading the shell's output (the backend then blocks the process). */
  pauseOutput(): void {
    this.outputPaused = true;
    this.shell?.stream.pause();
  }

  resumeOutput(): void {
    this.outputPaused = false;
    this.shell?.stream.resume();
  }

  /** Sends an event to the attached page, if any. */
  notify(event: ServerEvent): void {
    this.connection?.event(event);
  }

  /**
   * Closes for good: tells the page why, closes its socket, kills the shell (an exec's shell
   * does not end when its client goes away). Idempotent.
   */
  close(reason: CloseReason, code: number | null, notice?: string): void {
    if (this.closed) return;
    this.machine.moveTo('closed');
    this.exit = { code, reason };
    clearTimeout(this.ageTimer);
    clearTimeout(this.idleTimer);
    this.clearGrace();
    const connection = this.connection;
    this.connection = undefined;
    if (connection) {
      if (notice) connection.event({ type: 'notice', kind: 'info', message: notice });
      connection.event({ type: 'exit', code, reason });
      connection.close(1000, reason === 'exit' ? 'The shell exited.' : 'The terminal was closed.');
    }
    this.replay.clear();
    this.earlyInput = [];
    const shell = this.shell;
    this.shell = undefined;
    if (shell) {
      shell.stream.removeAllListeners('data');
      shell.stream.resume();
      if (reason !== 'exit')
        void shell.kill().catch((error: unknown) => this.init.onError?.(error, 'kill shell'));
    }
    this.init.onClosed?.(this);
  }

  get exitInfo(): { code: number | null; reason: CloseReason } | undefined {
    return this.exit;
  }

  private startGrace(): void {
    this.clearGrace();
    this.graceTimer = setTimeout(() => this.close('grace', null), this.init.timings.graceMs);
    this.graceTimer.unref();
  }

  private clearGrace(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }

  /** Lazy idle check: input only records a time; the timer re-arms itself for what is left. */
  private scheduleIdle(delayMs: number): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.checkIdle(), Math.max(0, delayMs));
    this.idleTimer.unref();
  }

  private checkIdle(): void {
    if (this.closed) return;
    const { idleTimeoutMs, idleWarningMs } = this.init.timings;
    const idleFor = this.now() - this.lastInputAt;
    if (idleFor >= idleTimeoutMs) {
      this.close('idle', null, `This terminal closed after ${minutes(idleTimeoutMs)} without input.`);
      return;
    }
    const warnAt = idleTimeoutMs - idleWarningMs;
    if (idleFor >= warnAt) {
      if (!this.idleWarned) {
        this.idleWarned = true;
        const closesInS = Math.ceil((idleTimeoutMs - idleFor) / 1000);
        this.connection?.event({
          type: 'notice',
          kind: 'idle-warning',
          message: `This terminal closes in ${minutes(closesInS * 1000)} without input. Press a key to keep it open.`,
          closesInS,
        });
      }
      this.scheduleIdle(idleTimeoutMs - idleFor);
    } else {
      this.scheduleIdle(warnAt - idleFor);
    }
  }
}
