/**
 * The server's half of the heartbeat (TerminalSocket): a peer that stops answering pings (a
 * dropped route, a sleeping laptop) is dropped within two intervals, its terminal detached and the
 * miss reported; a peer that answers stays. Real `ws` sockets on loopback, a stand-in terminal.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { Terminal } from '../../../../server/terminals/terminal.js';
import { TerminalSocket } from '../../../../server/terminals/terminal-socket.js';

const heartbeatMs = 100;

describe('TerminalSocket heartbeat', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  /** A server that wraps each connection in a TerminalSocket, and what happened to it. */
  const serve = async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    const seen = { missed: 0, detached: 0 };
    const terminal = {
      detach: () => (seen.detached += 1),
      pauseOutput: () => undefined,
      resumeOutput: () => undefined,
    } as unknown as Terminal;
    const sockets: TerminalSocket[] = [];
    server.on('connection', (ws) => {
      sockets.push(
        new TerminalSocket(ws, terminal, {
          sessionIdHash: 'session',
          userId: 'user',
          heartbeatMs,
          onHeartbeatMissed: () => (seen.missed += 1),
        }),
      );
    });
    cleanups.push(() => {
      for (const socket of sockets) socket.close(1001, 'test over');
      server.close();
    });
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { seen, url };
  };

  const connect = async (url: string, autoPong: boolean) => {
    const client = new WebSocket(url, { autoPong });
    cleanups.push(() => client.terminate());
    await once(client, 'open');
    return client;
  };

  it('F07 drops a peer that stops answering pings, detaches its terminal and reports the miss', async () => {
    const { seen, url } = await serve();
    const client = await connect(url, false);
    let pings = 0;
    client.on('ping', () => (pings += 1));
    const [code] = (await once(client, 'close')) as [number];
    // Terminated, not closed: a dead peer would never read a close frame.
    expect(code).toBe(1006);
    expect(pings).toBe(1);
    expect(seen).toEqual({ missed: 1, detached: 1 });
  });

  it('F07 keeps a peer that answers every ping', async () => {
    const { seen, url } = await serve();
    const client = await connect(url, true);
    let pings = 0;
    client.on('ping', () => (pings += 1));
    while (pings < 6) await once(client, 'ping');
    expect(client.readyState).toBe(WebSocket.OPEN);
    expect(seen).toEqual({ missed: 0, detached: 0 });
  });
});
