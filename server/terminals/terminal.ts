/**
 * One shell in an environment (a tab). It outlives its WebSockets: while no page is attached it
 * keeps reading output into its screen mirror, and it is killed when the grace period ends, after
 * the idle timeout (no input; output does not count), at its maximum age, or when its shell exits.
 * Several pages may attach at once (mirrored output, input from any, the latest resize wins).
 * The shell lives in a session holder, so losing its stream (engine restart) only means opening
 * it again, and a server shutdown `release`s it without killing it.
 * Every timer, listener and the shell's stream are owned here and disposed in `close`/`release`.
 */
import type { Shell } from '../../sandbox/index.js';
import type { ServerEvent, TerminalPhase } from '../protocol/terminal-wire.js';
import { CloseCode, fullReset } from '../protocol/terminal-wire.js';
import { ScreenMirror } from './screen-mirror.js';
import { TerminalStateMachine, type TerminalState } from './terminal-state.js';

/** The page side of a terminal: one WebSocket, or a fake in tests. */
export interface TerminalConnection {
  /** Raw PTY output for the page. */
  output(chunk: Buffer): void;
  /** The screen as it is now (RIS first), replacing output the page has not rendered yet. */
  repaint?(screen: Buffer): void;
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

/** Counts a terminal's bytes each way (the metrics). */
export interface TerminalTraffic {
  output(bytes: number): void;
  input(bytes: number): void;
}

/** Sees a terminal's output, input and resizes as they happen (a session recording). */
export interface TerminalTap {
  output(chunk: Buffer): void;
  input(chunk: Buffer): void;
  resize(cols: number, rows: number): void;
  /** The terminal closed or was released; no calls follow. */
  end(): void;
}

export interface TerminalInit {
  readonly id: string;
  readonly ownerId: string;
  readonly region: string;
  readonly accountId?: string;
  readonly permissionSet?: string;
  readonly timings: TerminalTimings;
  /** Scrollback lines the screen mirror keeps (its memory bound). */
  readonly mirrorScrollbackLines?: number;
  /** Creation time, when re-adopted after a restart. */
  readonly createdAt?: number;
  readonly now?: () => number;
  /** Called once, after the terminal has closed. */
  readonly onClosed?: (terminal: Terminal) => void;
  /** Called each time a page attaches (after it got the phase; its screen follows). */
  readonly onAttached?: (terminal: Terminal) => void;
  readonly onError?: (error: unknown, what: string) => void;
  readonly traffic?: TerminalTraffic;
  /** Must only queue: it runs on the output path. */
  readonly tap?: TerminalTap;
  /** The session is recorded (the tap is its recording): the page says so. */
  readonly recorded?: 'output' | 'output+input';
}

/** A terminal's screen kept across a server restart (see `Terminal.saveScreen`). */
export interface SavedScreen {
  readonly cols: number;
  readonly rows: number;
  /** The mirror's serialized screen and scrollback. */
  readonly data: Buffer;
  /** How much of the shell's output (in the holder's numbering) the screen shows. */
  readonly offset?: number;
}

/** Pauses the shell while its screen is saved for a restart. */
const savingScreen = Symbol('saving screen');

/** Input typed while the shell is still starting is kept, up to this much. */
const maxEarlyInputBytes = 64 * 1024;

const minutes = (ms: number): string => {
  const m = Math.round(ms / 60_000);
  return m >= 1 ? `${m} minute${m === 1 ? '' : 's'}` : `${Math.round(ms / 1000)} seconds`;
};

/** A terminal's maximum age as people say it: "12 hours", "90 minutes", "25 seconds". */
const duration = (ms: number): string => {
  const hours = ms / 3_600_000;
  if (Number.isInteger(hours) && hours >= 1) return `${hours} hour${hours === 1 ? '' : 's'}`;
  return minutes(ms);
};

export class Terminal {
  readonly id: string;
  readonly ownerId: string;
  readonly region: string;
  readonly accountId: string | undefined;
  readonly permissionSet: string | undefined;
  readonly createdAt: number;
  readonly recorded: 'output' | 'output+input' | undefined;

  private readonly machine = new TerminalStateMachine();
  private readonly mirror: ScreenMirror;
  private readonly now: () => number;
  private shell: Shell | undefined;
  /** Attached pages; a page is `priming` until it got the mirror's snapshot (live output waits). */
  private readonly connections = new Map<TerminalConnection, Buffer[] | undefined>();
  private readonly pausers = new Set<unknown>();
  private phase: TerminalPhase = 'starting';
  private phaseMessage: string | undefined;
  private size = { cols: 80, rows: 24 };
  /**
   * The holder's number of the next output byte the mirror has not been fed: a reattach asks for
   * output from here, so what the shell printed meanwhile comes once, and only once.
   */
  private fed = 0;
  private earlyInput: Buffer[] = [];
  private earlyInputBytes = 0;
  private lastInputAt: number;
  /** performance.now() of the shell's last output (quiet detection; not the injectable clock). */
  private lastOutputAt = 0;
  /** performance.now() when the shell's output was last let go after a pause (quiet detection). */
  private lastResumedAt = 0;
  private idleWarned = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly ageTimer: NodeJS.Timeout;
  private exit: { code: number | null; reason: CloseReason } | undefined;
  private released = false;

  constructor(private readonly init: TerminalInit) {
    this.id = init.id;
    this.ownerId = init.ownerId;
    this.region = init.region;
    this.accountId = init.accountId;
    this.permissionSet = init.permissionSet;
    this.recorded = init.recorded;
    this.now = init.now ?? Date.now;
    this.createdAt = init.createdAt ?? this.now();
    this.lastInputAt = this.now();
    this.mirror = new ScreenMirror({
      cols: this.size.cols,
      rows: this.size.rows,
      scrollbackLines: init.mirrorScrollbackLines ?? 1000,
      onBacklog: (behind) => (behind ? this.pauseOutput(this.mirror) : this.resumeOutput(this.mirror)),
    });
    const ageLeftMs = Math.max(0, init.timings.maxAgeMs - (this.now() - this.createdAt));
    this.ageTimer = setTimeout(
      () =>
        this.close(
          'max-age',
          null,
          `This terminal closed: terminals last at most ${duration(init.timings.maxAgeMs)}. Open a new one to go on; your files are kept.`,
        ),
      ageLeftMs,
    );
    this.ageTimer.unref();
    this.scheduleIdle(init.timings.idleTimeoutMs - init.timings.idleWarningMs);
    this.startGrace();
  }

  get state(): TerminalState {
    return this.machine.state;
  }

  get attached(): boolean {
    return this.connections.size > 0;
  }

  get attachedCount(): number {
    return this.connections.size;
  }

  get closed(): boolean {
    return this.machine.state === 'closed';
  }

  /** The shell's stream is open (false while starting or reattaching after a backend restart). */
  get live(): boolean {
    return this.shell !== undefined && !this.closed;
  }

  /** Where the shell's output should resume after a reattach (see `fed`). */
  get outputOffset(): number {
    return this.fed;
  }

  /** Reports a start-up phase (queued, creating, starting, ready) to the page, with its words. */
  setPhase(phase: TerminalPhase, message?: string): void {
    if (this.closed) return;
    this.phase = phase;
    this.phaseMessage = message;
    this.broadcast({ type: 'status', phase, ...(message ? { message } : {}) });
  }

  /**
   * Adds a page. It gets the current phase, then the mirror's screen and scrollback, then live
   * output; pages already attached are unaffected (several may watch one terminal).
   */
  attach(connection: TerminalConnection): boolean {
    if (this.closed || this.released) return false;
    this.connections.set(connection, []);
    this.clearGrace();
    if (this.machine.state === 'detached') this.machine.moveTo('attached');
    connection.event(
      this.shell || !this.phaseMessage
        ? { type: 'status', phase: this.shell ? 'ready' : this.phase }
        : { type: 'status', phase: this.phase, message: this.phaseMessage },
    );
    // Hold the shell while the snapshot is made (milliseconds), so what queues meanwhile stays
    // small and still goes through the page's flow control.
    const priming = {};
    this.pauseOutput(priming);
    void this.mirror.snapshot().then((screen) => {
      const queued = this.connections.get(connection);
      if (queued) {
        this.connections.set(connection, undefined);
        if (screen.length > 0) connection.output(screen);
        for (const chunk of queued) connection.output(chunk);
      }
      this.resumeOutput(priming);
    });
    this.init.onAttached?.(this);
    return true;
  }

  /**
   * Sends `connection` the screen as it is now in place of output it is behind on (see
   * TerminalSocket: an interrupt key while output is backed up). The shell is held while the
   * mirror catches up and the picture is taken, so nothing falls between the picture and the
   * live output that follows it.
   */
  repaint(connection: TerminalConnection): void {
    if (this.closed || this.released || !this.connections.has(connection)) return;
    if (this.connections.get(connection)) return; // still priming: its snapshot is on the way
    const holding = {};
    this.pauseOutput(holding);
    this.connections.set(connection, []);
    void this.mirror.snapshot().then((screen) => {
      const queued = this.connections.get(connection);
      if (queued) {
        this.connections.set(connection, undefined);
        const picture = Buffer.concat([Buffer.from(fullReset, 'latin1'), screen]);
        if (connection.repaint) connection.repaint(picture);
        else connection.output(picture);
        for (const chunk of queued) connection.output(chunk);
      }
      this.resumeOutput(holding);
    });
  }

  /**
   * True while the shell's output has paused for `quietMs` with nothing holding it back and the
   * mirror has nothing left to parse: what a program prints after an interrupt has arrived.
   */
  isQuiet(quietMs: number): boolean {
    return (
      this.shell !== undefined &&
      this.pausers.size === 0 &&
      this.mirror.backlogBytes === 0 &&
      // Silence while held back says nothing: count from when the output was let go again.
      performance.now() - Math.max(this.lastOutputAt, this.lastResumedAt) >= quietMs
    );
  }

  /**
   * The screen and scrollback as they are now, with the size they were drawn at, for a restart
   * (see `restoreScreen`). Stops reading the shell first, so nothing arrives after the picture is
   * taken that the next server would then miss; `release` follows.
   */
  async saveScreen(): Promise<SavedScreen | undefined> {
    if (this.closed || this.released) return undefined;
    this.pauseOutput(savingScreen);
    const data = await this.mirror.snapshot();
    return data.length > 0
      ? { cols: this.size.cols, rows: this.size.rows, data, offset: this.fed }
      : undefined;
  }

  /** Paints a screen saved by the previous server before anything else reaches the mirror. */
  restoreScreen(screen: SavedScreen): void {
    if (this.closed || this.released) return;
    this.size = { cols: screen.cols, rows: screen.rows };
    this.mirror.resize(screen.cols, screen.rows);
    this.mirror.write(screen.data);
    if (screen.offset !== undefined) this.fed = screen.offset;
  }

  /** Removes `connection`; when it was the last page, the grace period starts. */
  detach(connection: TerminalConnection): void {
    if (!this.connections.delete(connection)) return;
    this.resumeOutput(connection);
    if (this.connections.size > 0 || this.closed) return;
    if (this.machine.state === 'attached') this.machine.moveTo('detached');
    if (!this.released) this.startGrace();
  }

  /**
   * The shell is open (first time, or again after its stream was lost): wire its output, send
   * early input, apply the latest size. Its exit is the owner's to watch.
   */
  shellOpened(shell: Shell): void {
    if (this.closed || this.released) {
      if (this.closed) void shell.kill().catch((error: unknown) => this.init.onError?.(error, 'kill shell'));
      else shell.stream.destroy();
      return;
    }
    this.shell = shell;
    if (this.machine.state === 'starting') this.machine.moveTo(this.attached ? 'attached' : 'detached');
    this.phase = 'ready';
    this.phaseMessage = undefined;
    this.broadcast({ type: 'status', phase: 'ready' });
    let first = true;
    shell.stream.on('data', (chunk: Buffer) => {
      if (first) {
        // Known once output arrived: the holder may start later than asked (output it no longer
        // keeps), never earlier.
        first = false;
        this.fed = shell.outputStart?.() ?? this.fed;
      }
      this.fed += chunk.length;
      this.init.traffic?.output(chunk.length);
      this.init.tap?.output(chunk);
      this.lastOutputAt = performance.now();
      this.mirror.write(chunk);
      for (const [connection, queued] of this.connections) {
        if (queued) queued.push(chunk);
        else connection.output(chunk);
      }
    });
    shell.stream.on('error', (error: unknown) => this.init.onError?.(error, 'shell stream'));
    if (this.pausers.size > 0) shell.stream.pause();
    for (const chunk of this.earlyInput) shell.stream.write(chunk);
    this.earlyInput = [];
    this.earlyInputBytes = 0;
    void shell
      .resize(this.size.cols, this.size.rows)
      .catch((error: unknown) => this.init.onError?.(error, 'resize'));
  }

  /**
   * The shell's stream ended but the shell lives on in its holder (the engine restarted): pages
   * are told to come back later (4503) and the owner opens the shell again.
   */
  shellLost(shell: Shell): void {
    if (this.shell !== shell || this.closed) return;
    this.dropShell();
    this.phase = 'reconnecting';
    this.phaseMessage = undefined;
    for (const connection of [...this.connections.keys()])
      connection.close(CloseCode.backendUnavailable, 'Reconnecting to your shell. Try again in a moment.');
  }

  input(data: Buffer): void {
    if (this.closed) return;
    this.init.traffic?.input(data.length);
    this.init.tap?.input(data);
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
    this.mirror.resize(cols, rows);
    this.init.tap?.resize(cols, rows);
    if (this.shell)
      void this.shell.resize(cols, rows).catch((error: unknown) => this.init.onError?.(error, 'resize'));
  }

  /**
   * Flow control: stop reading the shell's output (the backend then blocks the process) while
   * any page, or the mirror, is behind. `by` is whoever asks; each must resume for itself.
   */
  pauseOutput(by: unknown = this): void {
    this.pausers.add(by);
    this.shell?.stream.pause();
  }

  resumeOutput(by: unknown = this): void {
    if (!this.pausers.delete(by) || this.pausers.size > 0) return;
    this.lastResumedAt = performance.now();
    this.shell?.stream.resume();
  }

  /** Sends an event to every attached page. */
  notify(event: ServerEvent): void {
    this.broadcast(event);
  }

  /**
   * Closes for good: tells the pages why, closes their sockets, ends the shell and its holder
   * (an exec's shell does not end when its client goes away). Idempotent.
   */
  close(reason: CloseReason, code: number | null, notice?: string): void {
    if (this.closed) return;
    this.machine.moveTo('closed');
    this.exit = { code, reason };
    this.clearTimers();
    const connections = [...this.connections.keys()];
    this.connections.clear();
    for (const connection of connections) {
      if (notice) connection.event({ type: 'notice', kind: 'info', message: notice });
      connection.event({ type: 'exit', code, reason });
      connection.close(1000, reason === 'exit' ? 'The shell exited.' : 'The terminal was closed.');
    }
    this.earlyInput = [];
    this.mirror.dispose();
    this.init.tap?.end();
    const shell = this.dropShell();
    if (shell && reason !== 'exit')
      void shell.kill().catch((error: unknown) => this.init.onError?.(error, 'kill shell'));
    this.init.onClosed?.(this);
  }

  /**
   * Server shutdown: lets go of the shell without ending it (it lives on in its holder and is
   * re-adopted at the next start). Pages are the owner's to close. Idempotent.
   */
  release(): void {
    if (this.closed || this.released) return;
    this.released = true;
    this.clearTimers();
    this.connections.clear();
    this.mirror.dispose();
    this.init.tap?.end();
    this.dropShell()?.stream.destroy();
  }

  get exitInfo(): { code: number | null; reason: CloseReason } | undefined {
    return this.exit;
  }

  private broadcast(event: ServerEvent): void {
    for (const connection of this.connections.keys()) connection.event(event);
  }

  /** Unhooks the current shell's stream and forgets it; returns it. */
  private dropShell(): Shell | undefined {
    const shell = this.shell;
    this.shell = undefined;
    if (shell) {
      shell.stream.removeAllListeners('data');
      shell.stream.resume();
    }
    return shell;
  }

  private clearTimers(): void {
    clearTimeout(this.ageTimer);
    clearTimeout(this.idleTimer);
    this.clearGrace();
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
        this.broadcast({
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
