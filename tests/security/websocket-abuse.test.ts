/**
 * SECURITY-TESTS W08 (the upgrade-level floods) and W09 (a client that stops reading).
 *
 * W08 runs on the security rig (real listening Cove, real SQLite, fake sandbox driver), so "no
 * container started" and the victim's shell input are observable. W09 needs a real shell printing
 * as fast as a TTY can: it runs a real Cove on the real Docker engine, in this process, so the
 * server's own memory is what `process.memoryUsage()` measures.
 */
import { connect as tcpConnect } from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../server/protocol/terminal-wire.js';
import { TerminalTestClient } from '../unit/server/terminals/ws-test-client.js';
import { HomeTestServer, MiB, regionA } from '../integration/server/homes/home-test-server.js';
import { origin, ready, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends raw bytes on a fresh loopback connection; resolves with all it got back before it closed. */
function rawExchange(port: number, request: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer and no close within ${timeoutMs} ms; got ${JSON.stringify(answer)}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      // A refusal is one short response: once its head is in, hang up ourselves.
      if (answer.includes('\r\n\r\n')) socket.end();
    });
    // The server may reset the connection while we still write: that is a refusal too.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.write(request);
  });
}

describe('W08 upgrade floods (fake sandbox driver)', () => {
  const cap = 40;
  let rig: SecurityRig;
  let attacker: RigUser;
  let victim: RigUser;
  let port: number;

  beforeAll(async () => {
    rig = await startSecurityRig({ terminals: { maxSocketsPerUser: cap } });
    attacker = await rig.user('mallory');
    victim = await rig.user('victor');
    port = Number(rig.base.split(':')[1]);
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('W08 an upgrade with 2,000 headers is refused with 431 before any upgrade; the server stays up', async () => {
    const id = await rig.createTerminal(attacker);
    const callsBefore = rig.driver.calls.length;
    const headers = Array.from({ length: 2000 }, (_, i) => `x-junk-${i}: ${'v'.repeat(8)}`).join('\r\n');
    const answer = await rawExchange(
      port,
      [
        `GET /api/environments/${'us-east-1'}/terminals/${id}/ws HTTP/1.1`,
        `Host: ${rig.base}`,
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        `Origin: ${origin}`,
        `Cookie: ${attacker.cookie}`,
        headers,
        '',
        '',
      ].join('\r\n'),
    );
    // Node refuses the oversized head itself (431) or hangs up; never a 101.
    expect(answer === '' || answer.startsWith('HTTP/1.1 431'), answer.slice(0, 200)).toBe(true);
    expect(answer).not.toContain('101 Switching Protocols');
    expect(answer).not.toMatch(/at .+\.(js|ts):\d+/);
    expect(rig.driver.calls.length).toBe(callsBefore);
    await rig.expectHealthy();
    const client = await rig.connect(attacker, id);
    await ready(client);
    client.send('after-headers\r');
    await client.waitForText('after-headers');
    client.close();
  });

  it("W08 1,000 parallel upgrades from one user: at most the per-user cap stay open, the rest close with 4429 and a reason, and another user's echo keeps working", async () => {
    const victimClient = await rig.connect(victim, await rig.createTerminal(victim));
    await ready(victimClient);
    const id = await rig.createTerminal(attacker);
    const callsBefore = rig.driver.calls.length;

    // Bare `ws` clients (no terminal emulator each): the cost measured is the server's.
    const started = performance.now();
    const flood = Array.from({ length: 1000 }, () => {
      const ws = new WebSocket(rig.wsUrl(id), { headers: { origin, cookie: attacker.cookie } });
      const result = new Promise<{ opened: boolean; code: number; reason: string; status?: number }>(
        (resolve) => {
          let opened = false;
          ws.on('open', () => (opened = true));
          ws.on('unexpected-response', (req, res) => {
            req.destroy();
            resolve({ opened, code: 0, reason: '', status: res.statusCode ?? 0 });
          });
          ws.on('error', () => undefined);
          ws.on('close', (code, reason) => resolve({ opened, code, reason: reason.toString() }));
        },
      );
      return { ws, result };
    });
    const openCount = () => flood.filter((f) => f.ws.readyState === WebSocket.OPEN).length;
    const settled = () =>
      flood.every((f) => f.ws.readyState === WebSocket.OPEN || f.ws.readyState === WebSocket.CLOSED);
    // While the flood comes in: the victim's shell still echoes.
    victimClient.send('victim-during-flood\r');
    await victimClient.waitForText('victim-during-flood', 30_000);
    await victimClient.waitFor(() => settled() && openCount() <= cap, 'the flood to settle', 30_000);
    const settledMs = performance.now() - started;
    console.info(
      `W08: 1000 parallel upgrades settled in ${Math.round(settledMs)} ms; ${openCount()} left open`,
    );

    expect(openCount()).toBe(cap);
    expect(rig.t.app.terminals.socketCount).toBe(cap + 1);
    const refused = await Promise.all(
      flood.filter((f) => f.ws.readyState === WebSocket.CLOSED).map((f) => f.result),
    );
    expect(refused).toHaveLength(1000 - cap);
    for (const outcome of refused)
      expect(outcome).toEqual({
        opened: true,
        code: CloseCode.rateLimited,
        reason: `Too many open terminal connections (${cap}). Close some tabs and reconnect.`,
      });
    // The flood opened at most the terminal's one shell: no more environments or shells.
    const newCalls = rig.driver.calls.slice(callsBefore);
    expect(newCalls.filter((c) => c.startsWith('openShell')).length).toBeLessThanOrEqual(1);
    expect(newCalls.filter((c) => c.startsWith('ensure')).length).toBeLessThanOrEqual(1);

    // The victim is unaffected after it too, and its shell got only its own keystrokes.
    victimClient.send('victim-after-flood\r');
    await victimClient.waitForText('victim-after-flood');
    const victimShell = rig.driver.shells.find((s) => s.stream.input.includes('victim-during-flood'));
    expect(victimShell?.options.env?.COVE_TERMINAL_ID).not.toBe(id);
    expect(victimShell?.stream.input).toBe('victim-during-flood\rvictim-after-flood\r');

    // Closing frees the slots: the attacker can use their terminal normally again.
    for (const f of flood) f.ws.terminate();
    await Promise.all(flood.map((f) => f.result));
    await victimClient.waitFor(() => rig.t.app.terminals.socketCount === 1, 'the flood sockets to go');
    const again = await rig.connect(attacker, id);
    again.send('attacker-again\r');
    await again.waitForText('attacker-again');
    again.close();
    victimClient.close();
    await rig.expectHealthy();
  });

  it('W08 1,000 parallel unauthenticated upgrades all get HTTP 401 before 101 and start nothing', async () => {
    const id = await rig.createTerminal(attacker);
    const callsBefore = rig.driver.calls.length;
    const sockets = rig.t.app.terminals.socketCount;
    // Not one of these reaches the WebSocket handler, so the count cannot grow.
    const outcomes = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        TerminalTestClient.open(rig.wsUrl(id), {
          origin,
          ...(i % 2 === 0 ? { cookie: 'cove_session=forged' } : {}),
        }).catch((error: unknown) => error as Error),
      ),
    );
    const statuses = new Set(
      outcomes.map((o) => (o instanceof TerminalTestClient ? 101 : o instanceof Error ? -1 : o.status)),
    );
    expect([...statuses]).toEqual([401]);
    expect(rig.driver.calls.length).toBe(callsBefore);
    expect(rig.t.app.terminals.socketCount).toBeLessThanOrEqual(sockets);
    await rig.expectHealthy();
  });
});

describe('W09 slow reader (real Docker)', () => {
  let server: HomeTestServer;

  beforeAll(async () => {
    server = await HomeTestServer.start({ homeSizeBytes: 64 * MiB });
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('W09 a client that stops reading during `yes` for 12 s: server memory stays bounded, output resumes, Ctrl-C brings the prompt back', async () => {
    const carol = await server.user('carol');
    const created = await server.request(carol, 'POST', `/api/environments/${regionA}/terminals`, {});
    expect(created.statusCode, created.body).toBe(201);
    const { terminalId } = created.json<{ terminalId: string }>();
    const client = await TerminalTestClient.connect(
      `ws://${server.base}/api/environments/${regionA}/terminals/${terminalId}/ws`,
      { origin, cookie: carol.cookie },
    );
    server.clients.push(client);
    // The screen, not the raw bytes: under the session holder the shell arrives as screen updates.
    await client.waitForPrompt(30_000);
    client.send('yes W09-flood\r');
    // Under the session holder the page gets tmux's screen updates, not every byte `yes` writes.
    await client.waitFor(() => client.received > 64 * 1024, '64 KiB of yes', 20_000);
    // Stop reading at the TCP level: the kernel buffers fill, then the server's bufferedAmount.
    const socket = (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    await sleep(1000);
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    const samples: number[] = [];
    for (let i = 0; i < 12; i++) {
      await sleep(1000);
      samples.push(process.memoryUsage().rss - baseline);
    }
    const receivedWhilePaused = client.received;
    const peakGrowth = Math.max(...samples);
    console.info(
      `W09: server RSS growth while the client did not read for 12 s: peak ${(peakGrowth / MiB).toFixed(1)} MiB (samples ${samples.map((s) => (s / MiB).toFixed(1)).join(', ')})`,
    );

    socket.resume();
    // Output resumes: `yes` is still running and its lines arrive again.
    await client.waitFor(() => client.received > receivedWhilePaused + 16 * 1024, 'output after resuming');
    expect(client.text).toContain('W09-flood');
    client.send('\x03');
    client.send('echo done-$((40+2))\r');
    // Generous: the backlog `yes` wrote before the Ctrl-C still drains through a busy 2-core host.
    await client.waitForScreen('done-42', 30_000);
    await client.waitForPrompt(10_000);
    // A TTY at 25-30 MB/s for 12 s is 300+ MB: a server that buffered it would grow by that much.
    expect(peakGrowth).toBeLessThan(48 * MiB);
    expect(client.events.filter((e) => e.type === 'error')).toEqual([]);
    expect(server.app.terminals.socketCount).toBe(1);
    client.close();
    const health = await server.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
  });
});
