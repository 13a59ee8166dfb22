/**
 * Terminals against the real Docker engine: a listening server on loopback, a real `ws` client,
 * a real SQLite file and real containers from cove/sandbox:latest. Every container this file
 * creates belongs to users made here (fresh ids per run) and is removed in afterAll.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../../server/app.js';
import { buildConfig } from '../../../../server/config.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import type { TerminalService } from '../../../../server/terminals/terminal-service.js';
import { isRefusal, TerminalTestClient } from '../../../unit/server/terminals/ws-test-client.js';

const origin = 'http://127.0.0.1:8080';
const region = 'us-east-1';

describe('terminals on Docker', () => {
  let dir: string;
  let store: SqliteStore;
  let app: FastifyInstance;
  let base: string;
  const cookies: Record<string, string> = {};
  const userIds: string[] = [];
  const clients: TerminalTestClient[] = [];

  const signIn = async (name: string): Promise<string> => {
    const user = await store.users.create({ username: `${name}-${process.pid}` });
    userIds.push(user.id);
    const { token } = await app.sessions.create(user.id, 'full');
    cookies[name] = `cove_session=${token}`;
    return user.id;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cove-terminal-docker-'));
    store = new SqliteStore(join(dir, 'cove.db'));
    const config = buildConfig({
      logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
      regions: [{ id: region, name: 'US East' }],
      sandbox: { graceS: 2, memoryBytes: 256 * 1024 ** 2 },
    });
    app = await buildApp({ config, store });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (const name of ['alice', 'bob', 'carol', 'dave']) await signIn(name);
  });

  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    const driver = app?.environments.driver(region);
    await app?.close();
    await Promise.all(userIds.map((ownerId) => driver?.remove({ ownerId, region }).catch(() => undefined)));
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const create = async (who: string): Promise<string> => {
    const response = await app.inject({
      method: 'POST',
      url: `/api/environments/${region}/terminals`,
      headers: { origin, cookie: cookies[who] as string, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(response.statusCode, response.body).toBe(201);
    return (response.json() as { terminalId: string }).terminalId;
  };
  const wsUrl = (id: string) => `ws://${base}/api/environments/${region}/terminals/${id}/ws`;
  const connect = async (who: string, id: string, hello = { cols: 80, rows: 24 }) => {
    const client = await TerminalTestClient.connect(wsUrl(id), {
      origin,
      cookie: cookies[who] as string,
      hello,
    });
    clients.push(client);
    return client;
  };
  const shell = async (who: string) => {
    const id = await create(who);
    const client = await connect(who, id);
    await client.waitForPrompt(20_000);
    return { id, client };
  };

  it('gives a prompt and runs a command: echo $((6*7)) prints 42', async () => {
    const { client } = await shell('alice');
    expect(client.events).toContainEqual({ type: 'status', phase: 'ready' });
    client.send('echo $((6*7))\r');
    await client.waitForScreen(/^42$/m);
  });

  it('applies resize (seen by stty size), and a bad resize gets an error event while the shell still echoes', async () => {
    const { client } = await shell('alice');
    client.control({ type: 'resize', cols: 123, rows: 45 });
    await new Promise((r) => setTimeout(r, 200));
    client.send('echo size-$(stty size)\r');
    await client.waitForScreen(/^size-45 123$/m);
    client.control({ type: 'resize', cols: 0, rows: -1 });
    const error = await client.waitForEvent('error');
    expect(error.code).toBe('COVE_ERR_TERMINAL_BAD_MESSAGE');
    client.clearOutput();
    client.send('echo still-$((1+1))\r');
    await client.waitForScreen('still-2');
    client.send('echo again-$(stty size)\r');
    await client.waitForScreen(/^again-45 123$/m);
  });

  it('refuses a wrong Origin (403) and a missing cookie (401) before the upgrade', async () => {
    const id = await create('alice');
    const foreignOrigin = await TerminalTestClient.open(wsUrl(id), {
      origin: 'https://evil.example',
      cookie: cookies.alice as string,
    });
    expect(isRefusal(foreignOrigin) && foreignOrigin.status).toBe(403);
    const noCookie = await TerminalTestClient.open(wsUrl(id), { origin });
    expect(isRefusal(noCookie) && noCookie.status).toBe(401);
  });

  it("treats another user's terminal id exactly like a missing one (4404), and leaves it alone", async () => {
    const { id, client: owner } = await shell('bob');
    const intruder = await connect('alice', id);
    const missing = await connect('alice', 'AAAAAAAAAAAAAAAAAAAAAA');
    const [a, b] = await Promise.all([intruder.closed, missing.closed]);
    expect(a.code).toBe(4404);
    expect(a).toEqual(b);
    expect(intruder.text).toBe('');
    owner.send('echo bob-$((2*3))\r');
    await owner.waitForScreen('bob-6');
  });

  it('closes a frame over 64 KiB with 1009', async () => {
    const { id } = await shell('alice');
    const client = await connect('alice', id);
    client.send(Buffer.alloc(70 * 1024, 0x61));
    expect((await client.closed).code).toBe(1009);
  });

  it('keeps server memory flat while a client stops reading during `yes`, and Ctrl-C works once it reads again', async () => {
    const { client } = await shell('carol');
    client.send('yes\r');
    // The holder (dtach) passes every byte on; flow control holds `yes` back while the page is behind.
    await client.waitFor(() => client.received > 32 * 1024, 'a flood of yes');
    const socket = (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    await new Promise((r) => setTimeout(r, 1000));
    global.gc?.();
    const before = process.memoryUsage().rss;
    await new Promise((r) => setTimeout(r, 4000));
    global.gc?.();
    const growth = process.memoryUsage().rss - before;
    socket.resume();
    client.clearOutput();
    const started = performance.now();
    client.send('\x03');
    client.send('echo done-$((40+2))\r');
    await client.waitForScreen('done-42', 10_000);
    const ctrlCMs = performance.now() - started;
    expect(growth).toBeLessThan(5 * 1024 * 1024);
    // Generous: after a flood the holder first repaints the screen.
    expect(ctrlCMs).toBeLessThan(5000);
  });

  it('refuses the 11th terminal with a clear message', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await create('dave'));
    const refused = await app.inject({
      method: 'POST',
      url: `/api/environments/${region}/terminals`,
      headers: { origin, cookie: cookies.dave as string, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({
      code: 'COVE_ERR_TERMINAL_LIMIT',
      message: `You have 10 open terminals in ${region}; close one to open another.`,
      max: 10,
      region,
    });
    for (const id of ids)
      await app.inject({
        method: 'DELETE',
        url: `/api/environments/${region}/terminals/${id}`,
        headers: { origin, cookie: cookies.dave as string },
      });
  });

  it('stops (does not remove) the environment after its last terminal is gone', async () => {
    const ownerId = await signIn('erin');
    const { client } = await shell('erin');
    const driver = app.environments.driver(region);
    expect((await driver.status({ ownerId, region })).state).toBe('running');
    client.send('exit\r');
    expect((await client.closed).code).toBe(1000);
    expect(client.events.at(-1)).toEqual({ type: 'exit', code: 0, reason: 'exit' });
    const deadline = Date.now() + 15_000;
    let state = 'running';
    while (Date.now() < deadline && state === 'running') {
      await new Promise((r) => setTimeout(r, 200));
      state = (await driver.status({ ownerId, region })).state;
    }
    expect(state).toBe('stopped');
  });

  it('kills a detached shell (the process, not just the stream) after the grace period', async () => {
    const ownerId = await signIn('frank');
    const { id, client } = await shell('frank');
    // A second terminal keeps the environment running so the first shell's fate can be checked.
    await shell('frank');
    client.send('echo $$ > /tmp/first.pid; echo saved-pid\r');
    await client.waitForScreen(/^saved-pid$/m);
    client.close();
    await client.closed;
    const terminals: TerminalService = app.terminals;
    expect(terminals.get(ownerId, id)?.state).toBe('detached');
    const probe = async () =>
      (
        await app.environments
          .driver(region)
          .exec({ ownerId, region }, [
            'sh',
            '-c',
            'kill -0 "$(cat /tmp/first.pid)" 2>/dev/null && echo alive || echo gone',
          ])
      ).stdout
        .toString()
        .trim();
    expect(await probe()).toBe('alive');
    await new Promise((r) => setTimeout(r, 3000));
    expect(terminals.get(ownerId, id)).toBeUndefined();
    const deadline = Date.now() + 5000;
    let state = await probe();
    while (state !== 'gone' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      state = await probe();
    }
    expect(state).toBe('gone');
  });
});
