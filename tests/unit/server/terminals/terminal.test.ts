import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Terminal, type TerminalConnection } from '../../../../server/terminals/terminal.js';
import type { ServerEvent } from '../../../../server/protocol/terminal-wire.js';
import { FakeShell } from '../environments/fake-sandbox-driver.js';

class RecordingConnection implements TerminalConnection {
  readonly output_: Buffer[] = [];
  readonly events: ServerEvent[] = [];
  closedWith: { code: number; reason: string } | undefined;
  output(chunk: Buffer): void {
    this.output_.push(chunk);
  }
  event(event: ServerEvent): void {
    this.events.push(event);
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }
  get text(): string {
    return Buffer.concat(this.output_).toString();
  }
}

const timings = {
  graceMs: 60_000,
  idleTimeoutMs: 20 * 60_000,
  idleWarningMs: 2 * 60_000,
  maxAgeMs: 12 * 3600_000,
};
const key = { ownerId: 'u1', region: 'us-east-1' };

function make(overrides: Partial<typeof timings> = {}) {
  const closed: Terminal[] = [];
  const terminal = new Terminal({
    id: 't1',
    ownerId: 'u1',
    region: 'us-east-1',
    timings: { ...timings, ...overrides },
    now: () => Date.now(),
    onClosed: (t) => closed.push(t),
  });
  return { terminal, closed };
}

const opened = () => new FakeShell(key, { cmd: ['bash', '-l'], cols: 80, rows: 24 });

describe('Terminal', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('moves starting → attached → detached → attached → closed and tells the page the phase', () => {
    const { terminal } = make();
    const page = new RecordingConnection();
    expect(terminal.attach(page)).toBe(true);
    expect(terminal.state).toBe('starting');
    terminal.setPhase('creating');
    terminal.shellOpened(opened());
    expect(terminal.state).toBe('attached');
    expect(page.events).toEqual([
      { type: 'status', phase: 'starting' },
      { type: 'status', phase: 'creating' },
      { type: 'status', phase: 'ready' },
    ]);
    terminal.detach(page);
    expect(terminal.state).toBe('detached');
    terminal.attach(new RecordingConnection());
    expect(terminal.state).toBe('attached');
    terminal.close('closed', null);
    expect(terminal.state).toBe('closed');
    expect(terminal.attach(new RecordingConnection())).toBe(false);
  });

  it('keeps input typed before the shell opened and applies the latest size once it opens', () => {
    const { terminal } = make();
    terminal.input(Buffer.from('ls\r'));
    terminal.resize(132, 43);
    const shell = opened();
    terminal.shellOpened(shell);
    expect(shell.stream.input).toBe('ls\r');
    expect(shell.resizes).toEqual([{ cols: 132, rows: 43 }]);
    terminal.resize(100, 30);
    expect(shell.resizes.at(-1)).toEqual({ cols: 100, rows: 30 });
  });

  it('repaints the screen for a page that (re)attaches, and mirrors output to every attached page', async () => {
    vi.useRealTimers();
    const { terminal } = make();
    const first = new RecordingConnection();
    terminal.attach(first);
    const shell = opened();
    terminal.shellOpened(shell);
    shell.stream.push(Buffer.from('$ echo hi\r\nhi\r\n'));
    await vi.waitFor(() => expect(first.text).toBe('$ echo hi\r\nhi\r\n'));
    const second = new RecordingConnection();
    terminal.attach(second);
    await vi.waitFor(() => expect(second.text).toContain('hi\r\n'));
    expect(first.closedWith).toBeUndefined();
    expect(second.events[0]).toEqual({ type: 'status', phase: 'ready' });
    shell.stream.push(Buffer.from('both\r\n'));
    await vi.waitFor(() => expect(second.text).toContain('both'));
    expect(first.text).toContain('both');
    terminal.input(Buffer.from('x'));
    expect(shell.stream.input).toBe('x');
    terminal.close('closed', null);
  });

  it('shows its tap the output, input and resizes as they happen, and ends it once at close', async () => {
    vi.useRealTimers();
    const seen: string[] = [];
    const terminal = new Terminal({
      id: 't1',
      ownerId: 'u1',
      region: 'us-east-1',
      timings,
      tap: {
        output: (chunk) => seen.push(`o:${chunk.toString()}`),
        input: (chunk) => seen.push(`i:${chunk.toString()}`),
        resize: (cols, rows) => seen.push(`r:${cols}x${rows}`),
        end: () => seen.push('end'),
      },
    });
    const shell = opened();
    terminal.shellOpened(shell);
    terminal.input(Buffer.from('ls\r'));
    shell.stream.push(Buffer.from('a.txt\r\n'));
    await vi.waitFor(() => expect(seen).toContain('o:a.txt\r\n'));
    terminal.resize(100, 30);
    terminal.close('closed', null);
    terminal.close('closed', null);
    expect(seen).toEqual(['i:ls\r', 'o:ls\r', 'o:a.txt\r\n', 'r:100x30', 'end']);
  });

  it("counts the output its mirror got in the holder's numbering, keeps it across a lost stream and a saved screen", async () => {
    vi.useRealTimers();
    const { terminal } = make();
    expect(terminal.outputOffset).toBe(0);
    const shell = opened();
    shell.start = 100;
    terminal.shellOpened(shell);
    shell.stream.push(Buffer.from('abc\r\n'));
    await vi.waitFor(() => expect(terminal.outputOffset).toBe(105));
    terminal.shellLost(shell);
    // The next stream starts later than asked (the holder no longer had it all): it says where.
    const next = opened();
    next.start = 1000;
    terminal.shellOpened(next);
    next.stream.push(Buffer.from('xy'));
    await vi.waitFor(() => expect(terminal.outputOffset).toBe(1002));
    const saved = await terminal.saveScreen();
    expect(saved?.offset).toBe(1002);
    terminal.release();

    const { terminal: adopted } = make();
    adopted.restoreScreen(saved as NonNullable<typeof saved>);
    expect(adopted.outputOffset).toBe(1002);
    // A stream with no header (no holder) leaves the count where it was, plus what it brought.
    const plain = opened();
    adopted.shellOpened(plain);
    plain.stream.push(Buffer.from('z'));
    await vi.waitFor(() => expect(adopted.outputOffset).toBe(1003));
    adopted.close('closed', null);
  });

  it('kills a detached shell when the grace period ends, not before', () => {
    const { terminal, closed } = make();
    const page = new RecordingConnection();
    terminal.attach(page);
    const shell = opened();
    terminal.shellOpened(shell);
    terminal.detach(page);
    vi.advanceTimersByTime(59_999);
    expect(terminal.closed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(terminal.closed).toBe(true);
    expect(terminal.exitInfo?.reason).toBe('grace');
    expect(shell.killed).toBe(true);
    expect(closed).toEqual([terminal]);
  });

  it('a reattach within the grace keeps it alive', () => {
    const { terminal } = make();
    terminal.shellOpened(opened());
    vi.advanceTimersByTime(59_000);
    terminal.attach(new RecordingConnection());
    vi.advanceTimersByTime(10 * 60_000);
    expect(terminal.closed).toBe(false);
  });

  it('warns before the idle timeout and closes at it; output does not count as activity', () => {
    const { terminal } = make();
    const page = new RecordingConnection();
    terminal.attach(page);
    const shell = opened();
    terminal.shellOpened(shell);
    vi.advanceTimersByTime(17 * 60_000);
    shell.stream.push(Buffer.from('still printing\r\n'));
    vi.advanceTimersByTime(60_000 - 1);
    expect(page.events.some((e) => e.type === 'notice')).toBe(false);
    vi.advanceTimersByTime(1);
    const warning = page.events.find((e) => e.type === 'notice');
    expect(warning).toMatchObject({ type: 'notice', kind: 'idle-warning', closesInS: 120 });
    vi.advanceTimersByTime(2 * 60_000);
    expect(terminal.closed).toBe(true);
    expect(page.events.at(-1)).toEqual({ type: 'exit', code: null, reason: 'idle' });
    expect(shell.killed).toBe(true);
  });

  it('input pushes the idle deadline out', () => {
    const { terminal } = make();
    const page = new RecordingConnection();
    terminal.attach(page);
    terminal.shellOpened(opened());
    vi.advanceTimersByTime(19 * 60_000);
    terminal.input(Buffer.from('x'));
    vi.advanceTimersByTime(10 * 60_000);
    expect(terminal.closed).toBe(false);
    vi.advanceTimersByTime(10 * 60_000);
    expect(terminal.closed).toBe(true);
    expect(terminal.exitInfo?.reason).toBe('idle');
    expect(page.events.filter((e) => e.type === 'notice' && e.kind === 'idle-warning')).toHaveLength(2);
  });

  it('closes at its maximum age even while busy', () => {
    const { terminal } = make({ maxAgeMs: 30 * 60_000 });
    terminal.attach(new RecordingConnection());
    terminal.shellOpened(opened());
    for (let i = 0; i < 29; i++) {
      vi.advanceTimersByTime(60_000);
      terminal.input(Buffer.from('x'));
    }
    expect(terminal.closed).toBe(false);
    vi.advanceTimersByTime(60_000);
    expect(terminal.exitInfo?.reason).toBe('max-age');
  });

  it('pauses and resumes the shell stream for flow control, and resumes when the page goes away', async () => {
    vi.useRealTimers();
    const { terminal } = make();
    const page = new RecordingConnection();
    terminal.attach(page);
    const shell = opened();
    terminal.shellOpened(shell);
    // Held only while the page's first screen is made.
    await vi.waitFor(() => expect(shell.stream.isPaused()).toBe(false));
    terminal.pauseOutput(page);
    terminal.pauseOutput(terminal);
    terminal.resumeOutput(terminal);
    expect(shell.stream.isPaused()).toBe(true);
    terminal.detach(page);
    expect(shell.stream.isPaused()).toBe(false);
  });

  it('kills a shell that opens after the terminal was closed', () => {
    const { terminal } = make();
    terminal.close('closed', null);
    const shell = opened();
    terminal.shellOpened(shell);
    expect(shell.killed).toBe(true);
  });
});
