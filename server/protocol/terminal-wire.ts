/**
 * The terminal WebSocket protocol (DESIGN.md, "Terminal wire protocol"). Binary frames carry raw
 * PTY bytes both ways; text frames carry one JSON control message or event each.
 */
export const protocolVersion = 1;

/** Resize bounds; anything outside is rejected before it reaches Docker. */
export const maxCols = 500;
export const maxRows = 200;
/** Inbound frames over this close the socket with 1009. */
export const maxInboundFrameBytes = 64 * 1024;

export type ClientMessage =
  | { readonly type: 'hello'; readonly v: number; readonly cols: number; readonly rows: number }
  | { readonly type: 'resize'; readonly cols: number; readonly rows: number }
  /** Cumulative: all output bytes the page has rendered since this socket opened (never a delta). */
  | { readonly type: 'ack'; readonly bytes: number }
  | { readonly type: 'ping' };

/** `queued`: waiting for a start slot; its status event's message says how many are ahead. */
export type TerminalPhase =
  'queued' | 'creating' | 'starting' | 'attaching' | 'ready' | 'reconnecting' | 'closed';

export type NoticeKind =
  | 'idle-warning'
  | 'home-nearly-full'
  | 'credentials'
  | 'session-expiring'
  | 'info'
  /** A file was uploaded into or downloaded from the home (`uploaded ~/data.csv (12.3 MB)`). */
  | 'file-transfer';

export type ServerEvent =
  | { readonly type: 'status'; readonly phase: TerminalPhase; readonly message?: string }
  | { readonly type: 'exit'; readonly code: number | null; readonly reason?: string }
  | { readonly type: 'error'; readonly code: string; readonly message: string }
  | {
      readonly type: 'notice';
      readonly kind: NoticeKind;
      readonly message: string;
      readonly [k: string]: unknown;
    }
  | { readonly type: 'pong' }
  /**
   * Output the page has not rendered yet is out of date: drop it (acknowledging it as rendered).
   * The next binary frame repaints the terminal from scratch (it starts with RIS, `ESC c`).
   */
  | { readonly type: 'repaint' };

/** INTR, QUIT and SUSP in a tty's default settings (Ctrl+C, Ctrl+\\, Ctrl+Z). */
export const interruptKeys: readonly number[] = [0x03, 0x1c, 0x1a];

/**
 * An interrupt key from a client this far behind (output sent, not acknowledged) makes the server
 * skip: it drops its queue and sends `repaint` once the program is quiet. So a client holding at
 * least this much unrendered output when it sends one may drop that output at once, and all
 * output after it until the `repaint`: the repaint is sure to come.
 */
export const interruptSkipBytes = 32 * 1024;

/** Full reset (RIS): a repaint starts from a blank terminal, also in a client that ignores `repaint`. */
export const fullReset = '\x1bc';

export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  invalidPayload: 1007,
  policy: 1008,
  tooBig: 1009,
  notAuthenticated: 4401,
  forbidden: 4403,
  notFound: 4404,
  badMessage: 4400,
  rateLimited: 4429,
  backendUnavailable: 4503,
} as const;

export type ParseResult = { ok: true; message: ClientMessage } | { ok: false; reason: string };

const isDimension = (v: unknown, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max;

/** Validates one control frame. Never throws; never trusts prototypes or shapes. */
export function parseClientMessage(text: string): ParseResult {
  if (text.length > 4096) return { ok: false, reason: 'control message too long' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'control message is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'control message must be a JSON object' };
  const m = value as Record<string, unknown>;
  const type = Object.hasOwn(m, 'type') ? m.type : undefined;
  const dims = (): ParseResult | undefined =>
    isDimension(m.cols, maxCols) && isDimension(m.rows, maxRows)
      ? undefined
      : { ok: false, reason: `cols must be a whole number in 1..${maxCols} and rows in 1..${maxRows}` };
  switch (type) {
    case 'hello':
      if (m.v !== protocolVersion)
        return { ok: false, reason: `unsupported protocol version (this server speaks v${protocolVersion})` };
      return (
        dims() ?? {
          ok: true,
          message: { type: 'hello', v: protocolVersion, cols: m.cols as number, rows: m.rows as number },
        }
      );
    case 'resize':
      return (
        dims() ?? { ok: true, message: { type: 'resize', cols: m.cols as number, rows: m.rows as number } }
      );
    case 'ack':
      if (typeof m.bytes !== 'number' || !Number.isSafeInteger(m.bytes) || m.bytes < 0)
        return { ok: false, reason: 'ack.bytes must be a non-negative whole number' };
      return { ok: true, message: { type: 'ack', bytes: m.bytes } };
    case 'ping':
      return { ok: true, message: { type: 'ping' } };
    default:
      return { ok: false, reason: 'unknown control message type' };
  }
}
