/**
 * One terminal WebSocket speaking the wire protocol (DESIGN.md): binary frames are raw input for
 * the PTY, text frames are JSON control messages checked by `parseClientMessage`. Output goes out
 * through the coalescer under watermark flow control. A bad control message gets an `error` event
 * and changes nothing else; an input flood closes with 4429. Frame size (1009) and UTF-8 validity
 * of text frames (1007) are enforced by `ws` itself (maxPayload, UTF-8 validation).
 *
 * Interrupt keys (Ctrl+C, Ctrl+\, Ctrl+Z: the tty's INTR, QUIT and SUSP) typed while the page is
 * behind on output make the socket skip, as the tty itself discards its pending output on them:
 * what is queued here is dropped, the shell is no longer held back for this page (its output
 * still feeds the screen mirror), and once the program has gone quiet (or after at most a
 * second) the page gets a `repaint` event and the mirror's current screen. So the prompt comes
 * back after what the mirror parses, not after everything on the way to a slower screen.
 *
 * Heartbeat: a WebSocket ping every interval; a socket that answered none of the last one is
 * half-open (a laptop that slept, a dropped route) and is terminated, so its terminal detaches
 * and its grace period starts. The page pings too (`{"type":"ping"}`) to find the same from its end.
 */
import type { WebSocket, RawData } from 'ws';
import {
  CloseCode,
  interruptKeys,
  interruptSkipBytes,
  parseClientMessage,
  type ServerEvent,
} from '../protocol/terminal-wire.js';
import { defaultFlowWatermarks, FlowControl } from './flow-control.js';
import { defaultInputRateLimits, InputRateLimiter, type InputRateLimits } from './input-rate-limiter.js';
import { OutputCoalescer } from './output-coalescer.js';
import type { Terminal, TerminalConnection } from './terminal.js';

export interface TerminalSocketOptions {
  readonly highWatermarkBytes?: number;
  readonly lowWatermarkBytes?: number;
  readonly inputLimits?: InputRateLimits;
  /** Who opened it, so a revoked or expired session can close it. */
  readonly sessionIdHash: string;
  readonly userId: string;
  /** WebSocket ping interval; 0 turns the heartbeat off. */
  readonly heartbeatMs?: number;
  /** The peer missed a heartbeat and the socket was dropped (logged: an operator sees dead routes). */
  readonly onHeartbeatMissed?: () => void;
  readonly onError?: (error: unknown, what: string) => void;
}

/** An ack must advance by this much (or to everything sent) to be free of the input rate limit. */
const minAckStepBytes = 1024;

/** Output silent this long after an interrupt: the program has stopped (or is waiting). */
const skipQuietMs = 25;
const skipCheckMs = 10;
/** A flood the interrupt did not stop is repainted after this long and flows again. */
const maxSkipMs = 1000;
/**
 * The shell was held back for this page this recently: the pipe behind it (the holder, the exec's
 * tty, the engine's socket) is full of output from before the interrupt, even when the page has
 * just caught up with what reached it.
 */
const recentPauseMs = 500;

/** After this many bad control messages in a row the client is broken or hostile. */
const maxBadMessages = 100;

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);

export class TerminalSocket implements TerminalConnection {
  readonly sessionIdHash: string;
  readonly userId: string;
  private readonly flow: FlowControl;
  private readonly coalescer: OutputCoalescer;
  private readonly limiter: InputRateLimiter;
  private readonly lowWatermark: number;
  private badMessages = 0;
  private lastAck = 0;
  private open = true;
  private readonly closeListeners = new Set<() => void>();
  private heartbeat: NodeJS.Timeout | undefined;
  private answered = true;
  private skipping: { readonly since: number; readonly timer: NodeJS.Timeout } | undefined;
  private pausedAt = -Infinity;

  constructor(
    private readonly ws: WebSocket,
    private readonly terminal: Terminal,
    private readonly options: TerminalSocketOptions,
  ) {
    this.sessionIdHash = options.sessionIdHash;
    this.userId = options.userId;
    this.limiter = new InputRateLimiter(options.inputLimits ?? defaultInputRateLimits);
    this.lowWatermark = options.lowWatermarkBytes ?? defaultFlowWatermarks.lowWatermarkBytes;
    this.flow = new FlowControl({
      highWatermarkBytes: options.highWatermarkBytes ?? defaultFlowWatermarks.highWatermarkBytes,
      lowWatermarkBytes: this.lowWatermark,
      bufferedAmount: () => ws.bufferedAmount + this.coalescer.queuedBytes,
      pause: () => {
        this.pausedAt = performance.now();
        terminal.pauseOutput(this);
      },
      resume: () => terminal.resumeOutput(this),
    });
    this.coalescer = new OutputCoalescer(
      (frame, done) => {
        if (ws.readyState !== ws.OPEN) {
          done(new Error('socket closed'));
          return;
        }
        this.flow.sent(frame.length);
        ws.send(frame, { binary: true }, (error) => done(error ?? undefined));
      },
      () => this.flow.drained(),
    );
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', () => this.onClose());
    ws.on('error', (error) => options.onError?.(error, 'websocket'));
    ws.on('pong', () => (this.answered = true));
    if (options.heartbeatMs) {
      this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs);
      this.heartbeat.unref();
    }
  }

  private beat(): void {
    if (!this.answered) {
      this.ws.terminate();
      this.onClose();
      this.options.onHeartbeatMissed?.();
      return;
    }
    this.answered = false;
    try {
      this.ws.ping();
    } catch (error) {
      this.options.onError?.(error, 'websocket ping');
    }
  }

  /** Binds to the terminal (the page gets the phase and the replay). False when it is closed. */
  start(): boolean {
    return this.terminal.attach(this);
  }

  output(chunk: Buffer): void {
    if (!this.open || this.skipping) return;
    this.coalescer.push(chunk);
    this.flow.drained();
  }

  /** Called by the terminal with the screen that replaces what this page skipped. */
  repaint(screen: Buffer): void {
    if (!this.open) return;
    this.event({ type: 'repaint' });
    this.output(screen);
  }

  /**
   * Output was queued for this page (not yet rendered, or not yet sent), or the shell was held
   * back for it moments ago: it is behind. Never more than `interruptSkipBytes` queued, which
   * pages count on to skip ahead by themselves.
   */
  private get behind(): boolean {
    return (
      this.flow.isPaused ||
      performance.now() - this.pausedAt < recentPauseMs ||
      this.flow.unacknowledged + this.coalescer.queuedBytes >= Math.min(this.lowWatermark, interruptSkipBytes)
    );
  }

  private startSkipping(): void {
    if (this.skipping) return;
    this.coalescer.discardQueued();
    this.flow.bypass(true);
    const since = performance.now();
    const timer = setInterval(() => {
      if (this.terminal.isQuiet(skipQuietMs) || performance.now() - since >= maxSkipMs) this.stopSkipping();
    }, skipCheckMs);
    timer.unref();
    this.skipping = { since, timer };
  }

  private stopSkipping(): void {
    if (!this.skipping) return;
    clearInterval(this.skipping.timer);
    this.skipping = undefined;
    if (!this.open) return;
    this.flow.bypass(false);
    this.terminal.repaint(this);
  }

  event(event: ServerEvent): void {
    if (!this.open || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(JSON.stringify(event));
  }

  close(code: number, reason: string): void {
    if (!this.open) return;
    this.ws.close(code, reason.slice(0, 120));
    this.onClose();
  }

  /** Called once when the socket is gone; returns a disposable. */
  onClosed(listener: () => void): { dispose(): void } {
    this.closeListeners.add(listener);
    return { dispose: () => this.closeListeners.delete(listener) };
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (!this.open) return;
    const bytes = toBuffer(data);
    if (isBinary) {
      if (this.overLimit(bytes.length)) return;
      this.terminal.input(bytes);
      if (this.behind && interruptKeys.some((key) => bytes.includes(key))) this.startSkipping();
      return;
    }
    const parsed = parseClientMessage(bytes.toString('utf8'));
    // Acks that move the count forward are paced by our own output, so they are free; anything
    // else (keys, resizes, pings, repeated acks, junk) counts against the input rate.
    const pacedAck =
      parsed.ok &&
      parsed.message.type === 'ack' &&
      parsed.message.bytes > this.lastAck &&
      parsed.message.bytes >= this.lastAck + Math.min(minAckStepBytes, this.flow.unacknowledged);
    if (parsed.ok && parsed.message.type === 'ack' && pacedAck) this.lastAck = parsed.message.bytes;
    if (!pacedAck && this.overLimit(bytes.length)) return;
    if (!parsed.ok) {
      this.badMessage(parsed.reason);
      return;
    }
    const message = parsed.message;
    switch (message.type) {
      case 'hello':
      case 'resize':
        this.terminal.resize(message.cols, message.rows);
        break;
      case 'ack':
        if (!this.flow.acknowledged(message.bytes)) {
          this.badMessage('ack.bytes must not go backwards (acks count all bytes rendered since connecting)');
          return;
        }
        break;
      case 'ping':
        this.event({ type: 'pong' });
        break;
    }
    this.badMessages = 0;
  }

  private overLimit(size: number): boolean {
    if (this.limiter.take(size)) return false;
    this.close(CloseCode.rateLimited, 'Too much input too fast. Reconnect to continue.');
    return true;
  }

  private badMessage(reason: string): void {
    this.event({
      type: 'error',
      code: 'COVE_ERR_TERMINAL_BAD_MESSAGE',
      message: `Control message ignored: ${reason}.`,
    });
    if (++this.badMessages >= maxBadMessages)
      this.close(CloseCode.badMessage, 'Too many bad control messages.');
  }

  private onClose(): void {
    if (!this.open) return;
    this.open = false;
    clearInterval(this.heartbeat);
    if (this.skipping) clearInterval(this.skipping.timer);
    this.skipping = undefined;
    this.coalescer.close();
    this.flow.release();
    this.terminal.detach(this);
    for (const listener of this.closeListeners) listener();
    this.closeListeners.clear();
  }
}
