/**
 * One tab: an xterm.js terminal bound to one server terminal id over the terminal WebSocket.
 * Output is written as bytes, a slice at a time, and acknowledged from xterm's write callback (the
 * xterm.js flow-control guide); Ctrl+C while far behind, and a `repaint` event, drop what has not
 * been written yet; the socket reconnects to the same id with backoff after a network loss,
 * found by the socket closing, by pings without a pong, or by a reconnect that never opens.
 */
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { SearchAddon } from '@xterm/addon-search';
import { confirmDialog } from '../lib/dialog.js';
import { characterCount, ClipboardGate, type ClipboardChoice } from './clipboard-gate.js';
import { openClipboardPrompt, type ClipboardPrompt } from './clipboard-prompt.js';
import type { ServerEvent } from '../../../server/protocol/terminal-wire.js';
import {
  AckCounter,
  closeAction,
  failedOpenAction,
  isSafeLink,
  openTimeoutMs,
  OutputPump,
  parseOsc52,
  pageShortcut,
  pasteNeedsConfirmation,
  phaseMessage,
  PingWatch,
  reconnectDelayMs,
  type CloseAction,
} from './shell-logic.js';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface TabBinding {
  readonly accountId?: string;
  readonly permissionSet?: string;
}

export interface TabCallbacks {
  onState(tab: ShellTab, state: ConnectionState, message?: string): void;
  onIdleWarning(tab: ShellTab, message: string | undefined): void;
  onNotice(tab: ShellTab, message: string): void;
  /**
   * The terminal is gone on the server (closed, expired grace): offer a new one. `stopped`: its
   * whole environment stopped (out of memory, exited), so the offer is to restart it.
   */
  onGone(tab: ShellTab, message: string, stopped?: boolean): void;
}

/**
 * The page's half of the heartbeat: a ping this often, and a socket whose ping got no pong within
 * `pongTimeoutMs` is taken as dead and replaced, so a dropped route shows within about 20 s.
 */
const pingEveryMs = 5_000;
const pongTimeoutMs = 15_000;

/** One socket the tab opened (Date.now() times), kept for the page's test view. */
export interface ConnectAttempt {
  readonly startedAt: number;
  openedAt?: number;
  failedAt?: number;
  /** The backoff delay scheduled after this attempt ended. */
  retryInMs?: number;
}

const keptAttempts = 100;

/** Renderer names of WebGL implementations that draw on the CPU. */
const softwareRenderer = /swiftshader|llvmpipe|softpipe|software|microsoft basic render/i;
let gpuWebglCache: boolean | undefined;

/** Whether WebGL runs on a GPU here (asked once per page; a probe context is cheap). */
function gpuWebgl(): boolean {
  if (gpuWebglCache !== undefined) return gpuWebglCache;
  try {
    const gl = document.createElement('canvas').getContext('webgl2', { failIfMajorPerformanceCaveat: true });
    const info = gl?.getExtension('WEBGL_debug_renderer_info');
    const renderer = gl && info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : '';
    gpuWebglCache = gl !== null && !softwareRenderer.test(renderer);
    gl?.getExtension('WEBGL_lose_context')?.loseContext();
  } catch {
    gpuWebglCache = false;
  }
  return gpuWebglCache;
}

export class ShellTab {
  readonly term: Terminal;
  readonly element: HTMLElement;
  readonly search = new SearchAddon();
  state: ConnectionState = 'connecting';
  private readonly fit = new FitAddon();
  private readonly encoder = new TextEncoder();
  private ws: WebSocket | undefined;
  private pump: OutputPump | undefined;
  private attempt = 0;
  private reconnectTimer: number | undefined;
  /** OSC 52 writes: asked about, never silent (clipboard-gate.ts). */
  private readonly clipboard = new ClipboardGate();
  private clipboardPrompt: ClipboardPrompt | undefined;
  private ended = false;
  private hadConnection = false;
  private readonly overlay: HTMLElement;
  private heartbeat: number | undefined;
  private openTimer: number | undefined;
  private pings = new PingWatch(pongTimeoutMs);
  readonly attempts: ConnectAttempt[] = [];
  private exitReason: string | undefined;
  private lastNotice: string | undefined;

  constructor(
    readonly region: string,
    readonly terminalId: string,
    readonly binding: TabBinding,
    private readonly callbacks: TabCallbacks,
  ) {
    this.element = document.createElement('div');
    this.element.className = 'shell-tab-panel';
    this.element.dataset.terminalId = terminalId;
    this.overlay = document.createElement('div');
    this.overlay.className = 'shell-overlay';
    this.overlay.dataset.testid = 'shell-progress';
    this.overlay.textContent = 'Connecting…';
    this.element.append(this.overlay);
    this.term = new Terminal({
      allowProposedApi: true,
      cursorBlink: true,
      scrollback: 5000,
      fontFamily: 'ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace',
      fontSize: 14,
      theme: { background: '#0f1b2a' },
    });
    this.term.loadAddon(this.fit);
    this.term.loadAddon(this.search);
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
    this.term.loadAddon(
      new WebLinksAddon((_event, uri) => {
        if (isSafeLink(uri)) window.open(uri, '_blank', 'noopener,noreferrer');
      }),
    );
  }

  /** Puts the terminal in the page (it must be visible to measure) and connects. */
  open(): void {
    this.term.open(this.element);
    if (gpuWebgl()) this.loadWebgl();
    this.wireInput();
    this.fitNow();
    this.connect();
  }

  /**
   * Loaded on demand: half the page's code, and not needed for the first prompt. Not at all on a
   * software rasterizer (no GPU: VMs, remote desktops, headless): drawing every frame on the CPU
   * is slower there than xterm's DOM renderer, and its refit resizes the shell once more.
   */
  private loadWebgl(): void {
    void import('@xterm/addon-webgl')
      .then(({ WebglAddon }) => {
        if (this.ended && this.state === 'closed') return;
        const webgl = new WebglAddon();
        webgl.onContextLoss(() => {
          webgl.dispose();
          this.fitNow();
        });
        this.term.loadAddon(webgl);
        // The WebGL renderer's cell is whole device pixels (8 px where the DOM renderer measured
        // 8.43): fit again, or the first fit stays 8 columns short of the edge at 1280 px.
        this.fitNow();
      })
      .catch(() => {
        // No WebGL (old GPU, blocked): xterm's DOM renderer is the fallback.
      });
  }

  fitNow(): void {
    if (this.element.offsetParent === null) return;
    try {
      this.fit.fit();
    } catch {
      // Not measurable yet (hidden); the next fit will do.
    }
  }

  focus(): void {
    this.term.focus();
  }

  /** Types text at the prompt as a person would, without Enter (an "Open in Cove" link's command). */
  typeText(text: string): void {
    this.sendInput(this.encoder.encode(text));
  }

  /** The visible screen and scrollback as text (status checks, tests). */
  bufferText(): string {
    const buffer = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  }

  /** The line the cursor is on (cheap enough to poll every frame during a flood). */
  cursorLineText(): string {
    const buffer = this.term.buffer.active;
    return buffer.getLine(buffer.baseY + buffer.cursorY)?.translateToString(true) ?? '';
  }

  /** Ends the tab for good (the server terminal is closed by the caller). */
  dispose(): void {
    this.ended = true;
    window.clearTimeout(this.reconnectTimer);
    window.clearTimeout(this.openTimer);
    window.clearInterval(this.heartbeat);
    this.ws?.close(1000);
    this.clipboardPrompt?.close();
    this.term.dispose();
    this.element.remove();
  }

  private wireInput(): void {
    this.term.onData((data) => this.sendInput(this.encoder.encode(data)));
    this.term.onBinary((data) => this.sendInput(Uint8Array.from(data, (c) => c.charCodeAt(0))));
    this.term.onResize(({ cols, rows }) => this.control({ type: 'resize', cols, rows }));
    this.term.onSelectionChange(() => {
      if (this.term.hasSelection())
        void navigator.clipboard?.writeText(this.term.getSelection()).catch(() => {});
    });
    this.term.parser.registerOscHandler(52, (data) => {
      const text = parseOsc52(data);
      if (text !== undefined) this.onClipboardWrite(text);
      return true;
    });
    this.term.attachCustomKeyEventHandler((event) => {
      // The page's own keys (new tab, switch tab, Actions) are not typed into the shell: the
      // event goes on to the page's handler.
      if (pageShortcut(event) !== undefined) return false;
      const key = event.key.toLowerCase();
      if (event.type === 'keydown' && event.ctrlKey && event.shiftKey && key === 'c') {
        if (this.term.hasSelection())
          void navigator.clipboard?.writeText(this.term.getSelection()).catch(() => {});
        return false;
      }
      if (event.type === 'keydown' && event.ctrlKey && event.shiftKey && key === 'v') {
        void navigator.clipboard
          ?.readText()
          .then((text) => this.paste(text))
          .catch(() => {});
        event.preventDefault();
        return false;
      }
      return true;
    });
    // Every paste (menu, Ctrl+V, middle click) goes through the multi-line check.
    this.element.addEventListener(
      'paste',
      (event) => {
        const text = event.clipboardData?.getData('text/plain') ?? '';
        event.preventDefault();
        event.stopImmediatePropagation();
        void this.paste(text);
      },
      true,
    );
  }

  /** A program in the terminal asked to set the clipboard (OSC 52). */
  private onClipboardWrite(text: string): void {
    const step = this.clipboard.request(text);
    switch (step.kind) {
      case 'write':
        this.writeClipboard(step.text);
        break;
      case 'ask':
        this.clipboardPrompt = openClipboardPrompt(step.text, (choice) => this.onClipboardChoice(choice));
        break;
      case 'replace':
        this.clipboardPrompt?.update(step.text, step.replaced);
        break;
      case 'drop':
        break;
    }
  }

  private onClipboardChoice(choice: ClipboardChoice): void {
    this.clipboardPrompt = undefined;
    const text = this.clipboard.decide(choice);
    // Still inside the click's user activation: the browser lets the write through.
    if (text !== undefined) this.writeClipboard(text);
    if (!this.ended || this.state !== 'closed') this.focus();
  }

  /** Copies, and says so in the status line: even an allowed write is never silent. */
  private writeClipboard(text: string): void {
    const count = characterCount(text);
    const what = `${count} character${count === 1 ? '' : 's'}`;
    void (navigator.clipboard?.writeText(text) ?? Promise.reject(new Error('no clipboard'))).then(
      () => this.callbacks.onNotice(this, `The terminal copied ${what} to your clipboard.`),
      () =>
        this.callbacks.onNotice(
          this,
          `The terminal could not copy ${what}: the browser refused the clipboard. Allow clipboard access for this site and try again.`,
        ),
    );
  }

  private async paste(text: string): Promise<void> {
    if (!text) return;
    if (pasteNeedsConfirmation(text)) {
      const lines = text.split(/\r\n|\r|\n/).filter(Boolean).length;
      const ok = await confirmDialog(
        'Paste several lines?',
        `This paste has ${lines} line${lines === 1 ? '' : 's'}; the shell may run each one as a command. Paste it?`,
        'Paste',
        false,
      );
      this.focus();
      if (!ok) return;
    }
    this.term.paste(text);
  }

  private sendInput(bytes: Uint8Array): void {
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(bytes);
      this.pump?.typed(bytes);
    }
    this.callbacks.onIdleWarning(this, undefined);
  }

  private control(message: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private setState(state: ConnectionState, message?: string): void {
    this.state = state;
    this.element.dataset.state = state;
    this.callbacks.onState(this, state, message);
  }

  private showProgress(message: string | undefined): void {
    this.overlay.hidden = message === undefined;
    if (message !== undefined) this.overlay.textContent = message;
  }

  private connect(): void {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}/api/environments/${encodeURIComponent(this.region)}/terminals/${this.terminalId}/ws`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    const acks = new AckCounter();
    // Per socket: acks count what this socket delivered, and a reconnect starts over.
    this.pump?.drop();
    const pump = new OutputPump({ write: (data, parsed) => this.term.write(data, parsed) }, (bytes) => {
      const total = acks.onRendered(bytes);
      if (total !== undefined && ws.readyState === WebSocket.OPEN)
        ws.send(JSON.stringify({ type: 'ack', bytes: total }));
    });
    this.pump = pump;
    const record: ConnectAttempt = { startedAt: Date.now() };
    this.attempts.push(record);
    if (this.attempts.length > keptAttempts) this.attempts.shift();
    let opened = false;
    window.clearTimeout(this.openTimer);
    this.openTimer = window.setTimeout(() => {
      if (this.ws !== ws || opened) return;
      // Nothing answered (a route that drops packets): the browser would wait minutes.
      this.ws = undefined;
      ws.close();
      this.onClose(1006, 'no answer from the server', false, record, true);
    }, openTimeoutMs);
    ws.addEventListener('open', () => {
      opened = true;
      window.clearTimeout(this.openTimer);
      record.openedAt = Date.now();
      this.attempt = 0;
      // The server repaints the screen and scrollback from its mirror: start from a clean
      // terminal so nothing is doubled. Until then the old screen stays (no blank flash).
      if (this.hadConnection) this.term.reset();
      this.hadConnection = true;
      ws.send(JSON.stringify({ type: 'hello', v: 1, cols: this.term.cols, rows: this.term.rows }));
      this.setState('connected');
      this.pings = new PingWatch(pongTimeoutMs);
      window.clearInterval(this.heartbeat);
      this.heartbeat = window.setInterval(() => {
        if (this.ws !== ws) return;
        const next = this.pings.tick(performance.now());
        if (next === 'dead') {
          // Half-open: no close event will come in time. Stop listening and reconnect now.
          window.clearInterval(this.heartbeat);
          this.ws = undefined;
          ws.close();
          this.onClose(1006, 'no answer from the server', true, record);
          return;
        }
        if (next === 'ping' && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ping' }));
      }, pingEveryMs);
    });
    ws.addEventListener('message', (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data === 'string') {
        const parsed = JSON.parse(event.data) as ServerEvent;
        if (parsed.type === 'repaint') pump.repaint();
        else this.onEvent(parsed);
        return;
      }
      pump.push(new Uint8Array(event.data));
    });
    ws.addEventListener('close', (event) => {
      // A socket given up on by the heartbeat has been replaced already.
      if (this.ws !== ws) return;
      window.clearInterval(this.heartbeat);
      window.clearTimeout(this.openTimer);
      this.onClose(event.code, event.reason, opened, record);
    });
  }

  private onEvent(event: ServerEvent): void {
    switch (event.type) {
      case 'status':
        // The server's words win (a queued start says its place: "3 ahead of you").
        this.showProgress(event.message ?? phaseMessage(event.phase));
        // The prompt is here: let the user type without clicking first (unless focus is elsewhere).
        if (event.phase === 'ready' && !this.element.hidden && document.activeElement === document.body)
          this.focus();
        break;
      case 'notice':
        if (event.kind === 'idle-warning') this.callbacks.onIdleWarning(this, event.message);
        else {
          this.lastNotice = event.message;
          this.callbacks.onNotice(this, event.message);
        }
        break;
      case 'error':
        this.callbacks.onNotice(this, event.message);
        break;
      case 'exit':
        this.ended = true;
        this.exitReason = event.reason;
        this.showProgress(undefined);
        this.term.write(
          `\r\n\x1b[2m[${event.reason === 'exit' ? `exited with code ${event.code ?? '?'}` : `closed: ${event.reason ?? 'ended'}`}]\x1b[0m\r\n`,
        );
        break;
      case 'pong':
        this.pings.pong();
        break;
    }
  }

  private onClose(
    code: number,
    reason: string,
    opened: boolean,
    record: ConnectAttempt,
    timedOut = false,
  ): void {
    record.failedAt = Date.now();
    if (this.ended && code === 1000) {
      this.setState('closed');
      const stopped = this.exitReason === 'environment-stopped';
      this.callbacks.onGone(
        this,
        stopped ? (this.lastNotice ?? 'Your environment stopped.') : 'This terminal has ended.',
        stopped,
      );
      return;
    }
    if (this.ended) return;
    if (opened || timedOut) {
      this.act(opened ? closeAction(code) : 'reconnect', reason, record);
      return;
    }
    // A refused upgrade (401 before 101) and a refused connection both read 1006: ask over HTTP.
    this.setState('reconnecting');
    void this.probeTerminal().then((probe) => {
      if (!this.ended) this.act(failedOpenAction(probe, this.terminalId), reason, record);
    });
  }

  /** The tab's terminal list, or undefined when the server does not answer in time. */
  private async probeTerminal(): Promise<{ status: number; terminalIds?: string[] } | undefined> {
    try {
      const response = await fetch(`/api/environments/${encodeURIComponent(this.region)}/terminals`, {
        signal: AbortSignal.timeout(openTimeoutMs),
      });
      if (response.status !== 200) return { status: response.status };
      const body = (await response.json()) as { terminals: { terminalId: string }[] };
      return { status: 200, terminalIds: body.terminals.map((t) => t.terminalId) };
    } catch {
      return undefined;
    }
  }

  private act(action: CloseAction, reason: string, record: ConnectAttempt): void {
    switch (action) {
      case 'reconnect': {
        const delay = reconnectDelayMs(this.attempt++);
        record.retryInMs = delay;
        this.setState('reconnecting', `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
        window.clearTimeout(this.reconnectTimer);
        this.reconnectTimer = window.setTimeout(() => this.connect(), delay);
        break;
      }
      case 'sign-in':
        this.ended = true;
        this.setState('closed', 'Your session ended. Sign in again.');
        location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
        break;
      case 'gone':
        this.ended = true;
        this.setState('closed');
        this.callbacks.onGone(this, 'This terminal no longer exists.');
        break;
      case 'ended':
        this.ended = true;
        this.setState('closed', reason || undefined);
        this.callbacks.onGone(this, reason || 'This terminal has ended.');
        break;
    }
  }
}
