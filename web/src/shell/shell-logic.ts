/**
 * The shell page's pure decisions, kept apart from the DOM so they are unit-tested: when to
 * acknowledge output, how long to wait before reconnecting, when a silent socket is dead, what a
 * close code (or a socket that never opened) means, which pastes need a confirmation, which links
 * may open, and how the status line names the identity.
 */
import {
  CloseCode,
  interruptKeys,
  interruptSkipBytes,
  type TerminalPhase,
} from '../../../server/protocol/terminal-wire.js';

/**
 * Counts bytes xterm.js has rendered (from `write` callbacks) and says when to send a cumulative
 * `ack`. Acking every 16 KiB keeps the unacknowledged tail far below the server's watermark, so
 * typing at rest sends no acks at all.
 */
export class AckCounter {
  private rendered = 0;
  private acked = 0;

  constructor(private readonly everyBytes = 16 * 1024) {}

  /** Returns the total to acknowledge now, or undefined. */
  onRendered(bytes: number): number | undefined {
    this.rendered += bytes;
    if (this.rendered - this.acked < this.everyBytes) return undefined;
    this.acked = this.rendered;
    return this.acked;
  }
}

/** What OutputPump writes to: xterm.js's `write` with its parsed callback. */
export interface OutputSink {
  write(data: Uint8Array, parsed: () => void): void;
}

/**
 * Hands output to xterm.js a slice at a time (the next once the last is parsed), so what has
 * arrived but is not on screen yet stays here, where a `repaint` can drop it: the server sends
 * one when the user interrupts a flood the page is behind on, and the screen that follows
 * replaces it. Every byte counts as rendered once parsed or dropped (for the acks).
 */
export class OutputPump {
  private queue: Uint8Array[] = [];
  private writing = false;
  /** Output until the next `repaint` is out of date (an interrupt while far behind). */
  private skipping = false;

  constructor(
    private readonly sink: OutputSink,
    private readonly rendered: (bytes: number) => void,
    private readonly sliceBytes = 16 * 1024,
  ) {}

  /** Bytes received and not yet handed to xterm.js. */
  get queuedBytes(): number {
    return this.queue.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  push(data: Uint8Array): void {
    if (this.skipping) {
      this.rendered(data.length);
      return;
    }
    for (let at = 0; at < data.length; at += this.sliceBytes)
      this.queue.push(data.subarray(at, Math.min(data.length, at + this.sliceBytes)));
    this.pump();
  }

  /**
   * The user typed `input`. An interrupt key while this far behind drops what is queued now and
   * what arrives until the server's repaint (see `interruptSkipBytes`): the prompt need not wait
   * for stale output to reach the screen first, as the tty drops its own on INTR.
   */
  typed(input: Uint8Array): void {
    if (this.skipping || this.queuedBytes < interruptSkipBytes) return;
    if (!interruptKeys.some((key) => input.includes(key))) return;
    this.skipping = true;
    this.drop();
  }

  /** The server's `repaint` event: what is queued is out of date, and what follows is the screen. */
  repaint(): void {
    this.skipping = false;
    this.drop();
  }

  /** Drops what is still queued (the repaint that follows replaces it). */
  drop(): void {
    const dropped = this.queuedBytes;
    this.queue = [];
    if (dropped > 0) this.rendered(dropped);
  }

  private pump(): void {
    if (this.writing) return;
    const next = this.queue.shift();
    if (!next) return;
    this.writing = true;
    this.sink.write(next, () => {
      this.writing = false;
      this.rendered(next.length);
      this.pump();
    });
  }
}

/** Exponential backoff with jitter for reconnects: 0.5 s, 1 s, 2 s … up to 30 s. */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.75 + random() * 0.5));
}

export type CloseAction = 'reconnect' | 'gone' | 'sign-in' | 'ended';

/**
 * A socket that has not opened by then is given up on and retried: on a route that silently drops
 * packets the browser itself waits minutes for the handshake (reconnecting-websocket uses 4 s).
 */
export const openTimeoutMs = 5_000;

/**
 * The page's half of the heartbeat: `tick` on every interval says whether to send a ping, wait, or
 * give the socket up because the last ping got no pong within `timeoutMs` (a half-open connection
 * never closes by itself). Measured from the ping, not from the last pong, so a hidden tab whose
 * timers the browser runs once a minute is never taken for a dead connection.
 */
export class PingWatch {
  private sentAt: number | undefined;

  constructor(private readonly timeoutMs: number) {}

  tick(now: number): 'ping' | 'wait' | 'dead' {
    if (this.sentAt === undefined) {
      this.sentAt = now;
      return 'ping';
    }
    return now - this.sentAt >= this.timeoutMs ? 'dead' : 'wait';
  }

  pong(): void {
    this.sentAt = undefined;
  }
}

/**
 * A socket that closed without ever opening tells nothing (a refused upgrade, a refused or reset
 * connection all read 1006), so the page looks at its terminal list: `undefined` when that did not
 * answer either (network or server down: keep trying), else the status and the terminal ids.
 */
export function failedOpenAction(
  probe: { readonly status: number; readonly terminalIds?: readonly string[] } | undefined,
  terminalId: string,
): CloseAction {
  if (probe === undefined) return 'reconnect';
  switch (probe.status) {
    case 200:
      return probe.terminalIds?.includes(terminalId) === false ? 'gone' : 'reconnect';
    case 401:
      return 'sign-in';
    case 403:
      return 'ended';
    case 404:
      return 'gone';
    default:
      // 429, 5xx: the server is there but busy or degraded.
      return 'reconnect';
  }
}

/** What the page does when its socket closes. */
export function closeAction(code: number): CloseAction {
  switch (code) {
    case CloseCode.normal:
      return 'ended';
    case CloseCode.notFound:
      return 'gone';
    case CloseCode.notAuthenticated:
      return 'sign-in';
    case CloseCode.forbidden:
    case CloseCode.policy:
    case CloseCode.tooBig:
    case CloseCode.invalidPayload:
    case CloseCode.badMessage:
      return 'ended';
    default:
      // 1001 going away, 1006 network loss, 4429 rate limited, 4503 backend: try the same id again.
      return 'reconnect';
  }
}

/** A paste that would run more than one command (or any command without Enter) gets a question first. */
export function pasteNeedsConfirmation(text: string): boolean {
  return /[\r\n]/.test(text);
}

/** Only http(s) links open; `javascript:`, `data:`, `file:` and the rest never do. */
export function isSafeLink(uri: string): boolean {
  try {
    const url = new URL(uri);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

export function identityLabel(binding: { accountId?: string; permissionSet?: string }): string {
  return binding.accountId && binding.permissionSet
    ? `${binding.accountId} / ${binding.permissionSet}`
    : 'no AWS credentials';
}

export function phaseMessage(phase: TerminalPhase): string | undefined {
  switch (phase) {
    case 'creating':
      return 'Creating your environment…';
    case 'queued':
    case 'starting':
      return 'Starting your environment…';
    case 'attaching':
    case 'reconnecting':
      return 'Connecting to your shell…';
    default:
      return undefined;
  }
}

/**
 * OSC 52 (`ESC ] 52 ; c ; <base64> BEL`) lets a program set the clipboard. Returns the text to copy,
 * or undefined for reads (`?`) and malformed payloads.
 */
export function parseOsc52(data: string): string | undefined {
  const separator = data.indexOf(';');
  if (separator < 0) return undefined;
  const payload = data.slice(separator + 1);
  if (payload === '?' || payload.length > 1_000_000 || !/^[A-Za-z0-9+/]*={0,2}$/.test(payload))
    return undefined;
  try {
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  } catch {
    return undefined;
  }
}

export type PageShortcut = 'new-tab' | 'previous-tab' | 'next-tab' | 'actions';

/**
 * The page's own keys. A terminal keeps Tab and almost every other key for the shell, so a
 * keyboard user reaches the tabs and the Actions menu with Alt+Shift and a key that no shell or
 * browser binds there. Matched on `code`, so a layout or macOS's Option characters do not matter.
 */
export function pageShortcut(event: {
  readonly type: string;
  readonly altKey: boolean;
  readonly shiftKey: boolean;
  readonly ctrlKey: boolean;
  readonly metaKey: boolean;
  readonly code: string;
}): PageShortcut | undefined {
  if (event.type !== 'keydown' || !event.altKey || !event.shiftKey || event.ctrlKey || event.metaKey)
    return undefined;
  switch (event.code) {
    case 'KeyT':
      return 'new-tab';
    case 'ArrowLeft':
    case 'BracketLeft':
      return 'previous-tab';
    case 'ArrowRight':
    case 'BracketRight':
      return 'next-tab';
    case 'KeyA':
      return 'actions';
    default:
      return undefined;
  }
}
