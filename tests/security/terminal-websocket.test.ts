/**
 * SECURITY-TESTS.md §4.1 (W) against the terminal WebSocket: a real listening server, a real
 * `ws` client, real SQLite, and a fake sandbox driver (so "no container started" is observable
 * and the cases run in seconds). The Docker-backed variants live in
 * tests/integration/server/terminals/terminal-docker.test.ts.
 */
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/app.js';
import { buildConfig } from '../../server/config.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { FakeSandboxDriver } from '../unit/server/environments/fake-sandbox-driver.js';
import { isRefusal, TerminalTestClient } from '../unit/server/terminals/ws-test-client.js';

const origin = 'http://127.0.0.1:8080';
const region = 'us-east-1';

describe('terminal WebSocket (W)', () => {
  let dir: string;
  let store: SqliteStore;
  let app: FastifyInstance;
  let driver: FakeSandboxDriver;
  let base: string;
  const cookies: Record<string, string> = {};
  const logs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cove-security-ws-'));
    store = new SqliteStore(join(dir, 'cove.db'));
    driver = new FakeSandboxDriver();
    const config = buildConfig({
      logLevel: 'info',
      regions: [{ id: region, name: 'US East' }],
      sandbox: { graceS: 30 },
    });
    const logStream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logs.push(chunk.toString());
        callback();
      },
    });
    app = await buildApp({ config, store, logStream, driverFactory: () => driver });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (const name of ['a', 'b', 'c']) {
      const user = await store.users.create({ username: `sec-${name}` });
      cookies[name] = `cove_session=${(await app.sessions.create(user.id, 'full')).token}`;
    }
  });

  afterAll(async () => {
    await app?.close();
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
    expect(response.statusCode).toBe(201);
    return (response.json() as { terminalId: string }).terminalId;
  };
  const url = (id: string) => `ws://${base}/api/environments/${region}/terminals/${id}/ws`;
  const connect = (who: string, id: string) =>
    TerminalTestClient.connect(url(id), { origin, cookie: cookies[who] as string });
  const ready = (client: TerminalTestClient) =>
    client.waitFor(() => client.events.some((e) => e.type === 'status' && e.phase === 'ready'), 'ready');

  it('W01 no cookie, an expired or forged cookie, and an MFA-pending cookie get HTTP 401 before 101 and start nothing', async () => {
    const shellsBefore = driver.calls.filter((call) => call.startsWith('openShell')).length;
    const id = await create('a');
    // Creating a terminal starts its shell in the background; count only what comes after.
    await vi.waitFor(() =>
      expect(driver.calls.filter((call) => call.startsWith('openShell')).length).toBe(shellsBefore + 1),
    );
    const callsBefore = driver.calls.length;
    const user = await store.users.create({ username: 'sec-pending' });
    const pending = await app.sessions.create(user.id, 'mfa');
    for (const cookie of [undefined, 'cove_session=forged-value', `cove_session=${pending.token}`]) {
      const result = await TerminalTestClient.open(url(id), { origin, ...(cookie ? { cookie } : {}) });
      expect(isRefusal(result) && result.status, cookie).toBe(401);
    }
    expect(driver.calls.length).toBe(callsBefore);
  });

  it('W02 only the exact configured Origin passes; every other one is 403 before 101', async () => {
    const id = await create('a');
    for (const bad of [
      'https://evil.example',
      'null',
      undefined,
      'http://sub.127.0.0.1:8080',
      'http://127.0.0.1:8081',
      'HTTP://127.0.0.1:8080',
      'http://127.0.0.1.:8080',
      'http://127.0.0.1:8080/',
    ]) {
      const result = await TerminalTestClient.open(url(id), {
        cookie: cookies.a as string,
        ...(bad ? { origin: bad } : {}),
      });
      expect(isRefusal(result) && result.status, String(bad)).toBe(403);
    }
  });

  it('W03 tokens in the query string are ignored (401 without the cookie) and never logged', async () => {
    const id = await create('a');
    const token = (cookies.a as string).split('=')[1] as string;
    for (const query of [`?token=${token}`, `?access_token=${token}`, `?cove_session=${token}`]) {
      const result = await TerminalTestClient.open(`${url(id)}${query}`, { origin });
      expect(isRefusal(result) && result.status, query).toBe(401);
    }
    expect(logs.some((line) => line.includes(`/terminals/${id}/ws`))).toBe(true);
    expect(logs.filter((line) => line.includes(token))).toEqual([]);
  });

  it('W04 junk control frames get error events; the keystroke stream and other sessions are unaffected', async () => {
    const id = await create('a');
    const client = await connect('a', id);
    await ready(client);
    const other = await connect('b', await create('b'));
    await ready(other);
    const junk = [
      '{"type":"resize"',
      '{"type":"resize","cols":"80","rows":24}',
      '{"type":"launch"}',
      '{"__proto__":{"type":"ping"}}',
      '{"constructor":{"prototype":{"type":"ping"}}}',
      `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
      'null',
      '"ping"',
    ];
    for (const frame of junk) client.control(frame);
    await client.waitFor(
      () => client.events.filter((e) => e.type === 'error').length === junk.length,
      'error events',
    );
    client.send('typed\r');
    await client.waitForText('typed');
    other.send('other\r');
    await other.waitForText('other');
    expect(({} as Record<string, unknown>).type).toBeUndefined();
    client.close();
    other.close();
  });

  it('W05 out-of-range or non-integer sizes never reach the driver', async () => {
    const id = await create('a');
    const client = await connect('a', id);
    await ready(client);
    const shell = driver.shells.find((s) => s.options.env?.COVE_TERMINAL_ID === id);
    for (const [cols, rows] of [
      [0, 24],
      [-1, 24],
      ['NaN', 24],
      [1.5, 24],
      [1e9, 24],
      [2 ** 31, 24],
      ['80', 24],
      [80, 0],
      [501, 24],
      [80, 201],
    ])
      client.control(
        `{"type":"resize","cols":${typeof cols === 'string' ? JSON.stringify(cols) : cols},"rows":${rows}}`,
      );
    client.control('{"type":"resize","cols":Infinity,"rows":24}');
    await client.waitFor(() => client.events.filter((e) => e.type === 'error').length === 11, 'error events');
    expect(
      shell?.resizes.every(
        (r) => Number.isInteger(r.cols) && r.cols >= 1 && r.cols <= 500 && r.rows >= 1 && r.rows <= 200,
      ),
    ).toBe(true);
    expect(shell?.resizes.some((r) => r.cols === 80 && r.rows === 24)).toBe(true);
    client.close();
  });

  it('W06 a text frame with invalid UTF-8 closes with 1007; the server stays up and a reconnect works', async () => {
    const id = await create('a');
    const client = await connect('a', id);
    client.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
    expect((await client.closed).code).toBe(1007);
    const again = await connect('a', id);
    again.send('back\r');
    await again.waitForText('back');
    again.close();
  });

  it('W07 a 10 MB frame closes with 1009 without the server keeping it; 60 KiB frames are fine', async () => {
    const id = await create('c');
    const ok = await connect('c', id);
    await ready(ok);
    for (let i = 0; i < 5; i++) ok.send(Buffer.alloc(60 * 1024, 0x61));
    await ok.waitFor(() => ok.received >= 5 * 60 * 1024, 'echo of 60 KiB frames');
    ok.close();
    const big = await connect('c', id);
    big.send(Buffer.alloc(10 * 1024 * 1024, 0x62));
    expect((await big.closed).code).toBe(1009);
    // The server must refuse on the frame's announced length, without reading (and keeping) the
    // body: a frame header that announces 10 MB, then only 1 KiB of it, is closed with 1009 at once.
    const announced = await connect('c', id);
    await ready(announced);
    const header = Buffer.alloc(14);
    header[0] = 0x82; // FIN, binary
    header[1] = 0x80 | 127; // masked, 64-bit length follows
    header.writeBigUInt64BE(BigInt(10 * 1024 * 1024), 2);
    header.writeUInt32BE(0x01020304, 10); // the mask key
    const socket = (announced.ws as unknown as { _socket: Socket })._socket;
    socket.write(Buffer.concat([header, Buffer.alloc(1024, 0x63)]));
    expect((await announced.closed).code).toBe(1009);
  });

  it("W08 an input flood closes with 4429 while another user's echo stays fine", async () => {
    const victim = await connect('b', await create('b'));
    await ready(victim);
    const flooder = await connect('c', await create('c'));
    await ready(flooder);
    for (let i = 0; i < 6000; i++) flooder.send('x');
    expect((await flooder.closed).code).toBe(4429);
    // The victim's terminal still answers (how fast is a number for the bench, not this test).
    victim.send('ok\r');
    await victim.waitForText('ok\r');
    expect(victim.ws.readyState).toBe(victim.ws.OPEN);
    victim.close();
  });

  it("W11 malformed ids are 400 (414 when huge), another user's id behaves like a missing one, the 11th shell is refused and closing one frees a slot", async () => {
    for (const bad of ['%2e%2e%2f', '..%2F..%2Ffoo', 'AAAA']) {
      const result = await TerminalTestClient.open(url(bad), { origin, cookie: cookies.a as string });
      expect(isRefusal(result) && result.status, bad).toBe(400);
    }
    const huge = await TerminalTestClient.open(url('A'.repeat(4096)), {
      origin,
      cookie: cookies.a as string,
    });
    expect(isRefusal(huge) && huge.status).toBe(414);
    const bs = await create('b');
    const foreign = await connect('a', bs);
    const missing = await connect('a', 'BBBBBBBBBBBBBBBBBBBBBB');
    const [f, m] = await Promise.all([foreign.closed, missing.closed]);
    expect(f).toEqual(m);
    expect(f.code).toBe(4404);
    const user = await store.users.create({ username: 'sec-limit' });
    cookies.d = `cove_session=${(await app.sessions.create(user.id, 'full')).token}`;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await create('d'));
    const post = () =>
      app.inject({
        method: 'POST',
        url: `/api/environments/${region}/terminals`,
        headers: { origin, cookie: cookies.d as string, 'content-type': 'application/json' },
        payload: '{}',
      });
    const eleventh = await post();
    expect(eleventh.statusCode).toBe(429);
    expect(eleventh.json()).toMatchObject({ code: 'COVE_ERR_TERMINAL_LIMIT' });
    const del = await app.inject({
      method: 'DELETE',
      url: `/api/environments/${region}/terminals/${ids[0]}`,
      headers: { origin, cookie: cookies.d as string },
    });
    expect(del.statusCode).toBe(204);
    expect((await post()).statusCode).toBe(201);
  });
});
