/**
 * A terminal WebSocket client for tests: speaks the wire protocol, records output and events,
 * acknowledges rendered bytes (unless told not to) and waits for text or events with a deadline.
 * Output also goes through a headless xterm.js, so a test can look at the screen as a user sees
 * it (`waitForScreen`): a shell under a session holder reaches the page as screen updates, not
 * as the shell's own bytes.
 */
import WebSocket from 'ws';
import headless from '@xterm/headless';
import type { ServerEvent } from '../../../../server/protocol/terminal-wire.js';

export interface Refusal {
  readonly status: number;
  readonly body: string;
}

export interface OpenOptions {
  readonly origin?: string | null;
  readonly cookie?: string;
  readonly autoAck?: boolean;
  readonly hello?: { cols: number; rows: number } | false;
}

export class TerminalTestClient {
  readonly events: ServerEvent[] = [];
  private chunks: Buffer[] = [];
  private retained = 0;
  received = 0;
  private acked = 0;
  autoAck: boolean;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** How the socket closed, once it has (for failure messages). */
  private closedWith: { code: number; reason: string } | undefined;
  private lastScreen: string | undefined;
  private waiters = new Set<() => void>();
  private readonly terminal: InstanceType<typeof headless.Terminal>;

  private constructor(
    readonly ws: WebSocket,
    autoAck: boolean,
    size: { cols: number; rows: number },
  ) {
    this.autoAck = autoAck;
    this.terminal = new headless.Terminal({ ...size, scrollback: 2000, allowProposedApi: true });
    ws.on('close', () => {
      // Keep the last screen readable for failure messages after the socket closed.
      this.lastScreen = this.screen;
      this.terminal.dispose();
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        this.terminal.write(data);
        this.chunks.push(data);
        this.retained += data.length;
        // Floods would make every check O(total output): keep the last MiB, enough for any assertion.
        while (this.retained > 1024 * 1024 && this.chunks.length > 1)
          this.retained -= (this.chunks.shift() as Buffer).length;
        this.received += data.length;
        if (this.autoAck) this.ack();
      } else {
        this.events.push(JSON.parse(data.toString()) as ServerEvent);
      }
      for (const waiter of this.waiters) waiter();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        resolve(this.closedWith);
        for (const waiter of this.waiters) waiter();
      });
    });
  }

  /** Opens a socket; resolves with the client, or with the HTTP refusal (no 101). */
  static open(url: string, options: OpenOptions = {}): Promise<TerminalTestClient | Refusal> {
    const headers: Record<string, string> = {};
    if (options.origin !== undefined && options.origin !== null) headers.origin = options.origin;
    if (options.cookie) headers.cookie = options.cookie;
    const ws = new WebSocket(url, { headers });
    return new Promise((resolve, reject) => {
      ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          // With this listener, ending the refused connection is ours to do.
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      ws.once('open', () => {
        const size =
          options.hello === false ? { cols: 80, rows: 24 } : (options.hello ?? { cols: 80, rows: 24 });
        const client = new TerminalTestClient(ws, options.autoAck ?? true, size);
        if (options.hello !== false)
          client.control({ type: 'hello', v: 1, ...(options.hello ?? { cols: 80, rows: 24 }) });
        resolve(client);
      });
      ws.once('error', (error) => {
        if (ws.readyState !== WebSocket.CLOSED) reject(error);
      });
    });
  }

  static async connect(url: string, options: OpenOptions = {}): Promise<TerminalTestClient> {
    const result = await TerminalTestClient.open(url, options);
    if (!(result instanceof TerminalTestClient)) throw new Error(`refused: ${result.status} ${result.body}`);
    return result;
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  /** The screen and scrollback as text, one line per row, trailing blanks trimmed. */
  get screen(): string {
    if (this.lastScreen !== undefined) return this.lastScreen;
    const buffer = this.terminal.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n').replace(/\n+$/, '');
  }

  /** Waits until the screen (as a user sees it) matches. */
  waitForScreen(pattern: string | RegExp, timeoutMs?: number): Promise<void> {
    const matches = () =>
      typeof pattern === 'string' ? this.screen.includes(pattern) : pattern.test(this.screen);
    return this.waitFor(matches, `screen ${String(pattern)}`, timeoutMs);
  }

  /** Waits for a shell prompt (`$`) on the last line of the screen. */
  waitForPrompt(timeoutMs?: number): Promise<void> {
    return this.waitForScreen(/\$\s*$/, timeoutMs);
  }

  clearOutput(): void {
    this.chunks = [];
    this.retained = 0;
  }

  send(input: string | Buffer): void {
    this.ws.send(typeof input === 'string' ? Buffer.from(input) : input, { binary: true });
  }

  control(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  ack(): void {
    if (this.received === this.acked) return;
    this.acked = this.received;
    this.control({ type: 'ack', bytes: this.acked });
  }

  /** Waits until `check` holds (re-checked on every frame and every 10 ms), or fails after `timeoutMs`. */
  waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters.delete(waiter);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `timed out waiting for ${what}; output so far: ${JSON.stringify(this.text.slice(-500))}; screen: ${JSON.stringify(this.screen.slice(-500))}; ${this.state()}`,
          ),
        );
      }, timeoutMs);
      const waiter = () => {
        if (!check()) return;
        done();
        resolve();
      };
      const poll = setInterval(waiter, 10);
      this.waiters.add(waiter);
    });
  }

  /** The socket's close code and reason (if closed) and the last server events, for failure messages. */
  private state(): string {
    const closed = this.closedWith
      ? `closed ${this.closedWith.code} ${JSON.stringify(this.closedWith.reason)}`
      : 'open';
    return `socket ${closed}; last events: ${JSON.stringify(this.events.slice(-5))}`;
  }

  waitForText(pattern: string | RegExp, timeoutMs?: number): Promise<void> {
    const matches = () =>
      typeof pattern === 'string' ? this.text.includes(pattern) : pattern.test(this.text);
    return this.waitFor(matches, `output ${String(pattern)}`, timeoutMs);
  }

  async waitForEvent<T extends ServerEvent['type']>(
    type: T,
    timeoutMs?: number,
  ): Promise<Extract<ServerEvent, { type: T }>> {
    await this.waitFor(() => this.events.some((e) => e.type === type), `a ${type} event`, timeoutMs);
    return this.events.find((e) => e.type === type) as Extract<ServerEvent, { type: T }>;
  }

  close(): void {
    this.ws.close(1000);
  }
}

export const isRefusal = (value: TerminalTestClient | Refusal): value is Refusal =>
  !(value instanceof TerminalTestClient);
