/**
 * The shell page's reconnect decisions (web/src/shell/shell-logic.ts): the backoff between
 * attempts, when a silent socket counts as dead, and what a socket that closed (or never opened)
 * means. The page wires them to real sockets in tests/e2e/network-drop.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../../../server/protocol/terminal-wire.js';
import {
  closeAction,
  failedOpenAction,
  openTimeoutMs,
  OutputPump,
  pageShortcut,
  PingWatch,
  reconnectDelayMs,
} from '../../../../web/src/shell/shell-logic.js';
import { interruptSkipBytes } from '../../../../server/protocol/terminal-wire.js';

describe('reconnect backoff', () => {
  it('F07 doubles from 0.5 s per attempt up to a 30 s cap', () => {
    const middle = () => 0.5;
    expect(Array.from({ length: 9 }, (_, attempt) => reconnectDelayMs(attempt, middle))).toEqual([
      500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });

  it('F07 jitters each delay by at most a quarter, so every delay is longer than any before it until the cap', () => {
    for (let attempt = 0; attempt < 6; attempt++) {
      const shortest = reconnectDelayMs(attempt, () => 0);
      const longest = reconnectDelayMs(attempt, () => 0.999_999);
      expect(shortest).toBe(Math.round(500 * 2 ** attempt * 0.75));
      expect(longest).toBe(Math.round(500 * 2 ** attempt * 1.25));
      // The next attempt's shortest wait is still longer than this one's longest.
      expect(reconnectDelayMs(attempt + 1, () => 0)).toBeGreaterThan(longest);
    }
    expect(reconnectDelayMs(50, () => 0.999_999)).toBeLessThanOrEqual(37_500);
    expect(reconnectDelayMs(-1, () => 0.5)).toBe(500);
  });

  it('F07 gives a socket that does not open a few seconds, not the browser’s minutes', () => {
    expect(openTimeoutMs).toBeGreaterThanOrEqual(3_000);
    expect(openTimeoutMs).toBeLessThanOrEqual(10_000);
  });
});

describe('PingWatch', () => {
  it('F07 pings, waits for the pong, and calls the socket dead when none came within the timeout', () => {
    const watch = new PingWatch(15_000);
    expect(watch.tick(0)).toBe('ping');
    expect(watch.tick(5_000)).toBe('wait');
    expect(watch.tick(10_000)).toBe('wait');
    expect(watch.tick(14_999)).toBe('wait');
    expect(watch.tick(15_000)).toBe('dead');
  });

  it('F07 a pong clears the ping, so the next tick pings again and the clock starts anew', () => {
    const watch = new PingWatch(15_000);
    expect(watch.tick(0)).toBe('ping');
    watch.pong();
    expect(watch.tick(5_000)).toBe('ping');
    expect(watch.tick(19_000)).toBe('wait');
    watch.pong();
    expect(watch.tick(40_000)).toBe('ping');
    expect(watch.tick(55_000)).toBe('dead');
  });

  it('F07 a hidden tab whose timer runs once a minute is not taken for a dead connection', () => {
    const watch = new PingWatch(15_000);
    for (let minute = 0; minute < 5; minute++) {
      expect(watch.tick(minute * 60_000)).toBe('ping');
      // The pong arrives as a message event, which the browser does not throttle.
      watch.pong();
    }
  });
});

describe('what a closed socket means', () => {
  it('F07 reconnects after a network loss, a restart or a backend outage; stops for the rest', () => {
    expect(closeAction(1006)).toBe('reconnect');
    expect(closeAction(CloseCode.goingAway)).toBe('reconnect');
    expect(closeAction(CloseCode.backendUnavailable)).toBe('reconnect');
    expect(closeAction(CloseCode.rateLimited)).toBe('reconnect');
    expect(closeAction(CloseCode.notFound)).toBe('gone');
    expect(closeAction(CloseCode.notAuthenticated)).toBe('sign-in');
    expect(closeAction(CloseCode.normal)).toBe('ended');
    expect(closeAction(CloseCode.forbidden)).toBe('ended');
    expect(closeAction(CloseCode.policy)).toBe('ended');
  });

  it('F07 a socket that never opened: keeps trying while nothing answers or the terminal is listed', () => {
    const id = 'term-1';
    // The terminal list did not answer either: the network or the server is down.
    expect(failedOpenAction(undefined, id)).toBe('reconnect');
    expect(failedOpenAction({ status: 200, terminalIds: ['term-0', id] }, id)).toBe('reconnect');
    expect(failedOpenAction({ status: 503 }, id)).toBe('reconnect');
    expect(failedOpenAction({ status: 502 }, id)).toBe('reconnect');
    expect(failedOpenAction({ status: 429 }, id)).toBe('reconnect');
  });

  it('F07 a socket that never opened: the terminal is gone, the session ended, or access is refused', () => {
    const id = 'term-1';
    expect(failedOpenAction({ status: 200, terminalIds: ['term-0'] }, id)).toBe('gone');
    expect(failedOpenAction({ status: 200, terminalIds: [] }, id)).toBe('gone');
    expect(failedOpenAction({ status: 404 }, id)).toBe('gone');
    expect(failedOpenAction({ status: 401 }, id)).toBe('sign-in');
    expect(failedOpenAction({ status: 403 }, id)).toBe('ended');
  });
});

describe('the page keys', () => {
  const key = (
    code: string,
    mods: Partial<Record<'altKey' | 'shiftKey' | 'ctrlKey' | 'metaKey', boolean>> = {},
  ) => ({
    type: 'keydown',
    altKey: true,
    shiftKey: true,
    ctrlKey: false,
    metaKey: false,
    code,
    ...mods,
  });

  it('Alt+Shift with T, ←/→ ([/]) and A are the new tab, tab switch and Actions keys', () => {
    expect(pageShortcut(key('KeyT'))).toBe('new-tab');
    expect(pageShortcut(key('ArrowLeft'))).toBe('previous-tab');
    expect(pageShortcut(key('BracketLeft'))).toBe('previous-tab');
    expect(pageShortcut(key('ArrowRight'))).toBe('next-tab');
    expect(pageShortcut(key('BracketRight'))).toBe('next-tab');
    expect(pageShortcut(key('KeyA'))).toBe('actions');
  });

  it('leaves every other key to the shell: other letters, a missing or extra modifier, key-up', () => {
    expect(pageShortcut(key('KeyB'))).toBeUndefined();
    expect(pageShortcut(key('KeyT', { shiftKey: false }))).toBeUndefined();
    expect(pageShortcut(key('KeyT', { altKey: false }))).toBeUndefined();
    // Ctrl+Alt+Shift+T and Cmd combinations belong to the system or the browser.
    expect(pageShortcut(key('KeyT', { ctrlKey: true }))).toBeUndefined();
    expect(pageShortcut(key('KeyT', { metaKey: true }))).toBeUndefined();
    expect(pageShortcut({ ...key('KeyT'), type: 'keyup' })).toBeUndefined();
  });
});

describe('OutputPump', () => {
  const harness = (sliceBytes = 4) => {
    const written: string[] = [];
    const pending: (() => void)[] = [];
    let rendered = 0;
    const pump = new OutputPump(
      {
        write: (data, parsed) => {
          written.push(new TextDecoder().decode(data));
          pending.push(parsed);
        },
      },
      (bytes) => (rendered += bytes),
      sliceBytes,
    );
    const parseNext = () => (pending.shift() as () => void)();
    return { pump, written, parseNext, rendered: () => rendered };
  };
  const bytes = (text: string) => new TextEncoder().encode(text);

  it('hands xterm one slice at a time, the next once the last is parsed, and counts what was rendered', () => {
    const { pump, written, parseNext, rendered } = harness();
    pump.push(bytes('abcdefghij'));
    expect(written).toEqual(['abcd']);
    expect(pump.queuedBytes).toBe(6);
    parseNext();
    expect(written).toEqual(['abcd', 'efgh']);
    parseNext();
    parseNext();
    expect(written).toEqual(['abcd', 'efgh', 'ij']);
    expect(rendered()).toBe(10);
  });

  it('on Ctrl+C while far behind drops the queue and all output until the repaint, counting it as rendered', () => {
    const { pump, written, parseNext, rendered } = harness(1024);
    pump.push(new Uint8Array(interruptSkipBytes + 1024).fill(0x79));
    expect(written).toHaveLength(1);
    pump.typed(bytes('\x03'));
    expect(pump.queuedBytes).toBe(0);
    pump.push(bytes('stale output still on its way'));
    parseNext();
    expect(written).toHaveLength(1);
    expect(rendered()).toBe(interruptSkipBytes + 1024 + 29);
    pump.repaint();
    pump.push(bytes('\x1bc$ '));
    expect(written.at(-1)).toBe('\x1bc$ ');
  });

  it('keeps output on Ctrl+C when not far behind, and on other keys when far behind', () => {
    const { pump, written } = harness(1024);
    pump.push(new Uint8Array(interruptSkipBytes).fill(0x79));
    pump.typed(bytes('\x03'));
    expect(pump.queuedBytes).toBe(interruptSkipBytes - 1024);
    pump.push(new Uint8Array(2048).fill(0x79));
    pump.typed(bytes('q'));
    expect(pump.queuedBytes).toBe(interruptSkipBytes + 1024);
    pump.push(bytes('more'));
    expect(written).toHaveLength(1);
    expect(pump.queuedBytes).toBe(interruptSkipBytes + 1028);
  });

  it('on a repaint drops what xterm has not been given yet, counting it as rendered, and goes on with what follows', () => {
    const { pump, written, parseNext, rendered } = harness();
    pump.push(bytes('stale-stale-stale'));
    pump.drop();
    expect(rendered()).toBe(13);
    pump.push(bytes('\x1bcnew'));
    parseNext();
    expect(written).toEqual(['stal', '\x1bcne']);
    parseNext();
    expect(written.at(-1)).toBe('w');
    parseNext();
    expect(rendered()).toBe(17 + 5);
    expect(pump.queuedBytes).toBe(0);
  });
});
