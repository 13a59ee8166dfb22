/**
 * The terminal HTTP routes and the WebSocket protocol against a fake sandbox driver: a real
 * listening server, a real `ws` client and a real SQLite file.
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
import { FakeSandboxDriver } from '../environments/fake-sandbox-driver.js';
import { isRefusal, TerminalTestClient } from './ws-test-client.js';

const origin = 'http://127.0.0.1:8080';
const region = 'us-east-1';

describe('terminal routes and protocol (fake driver)', () => {
  let dir: string;
  let store: SqliteStore;
  let app: FastifyInstance;
  let driver: FakeSandboxDriver;
  let base: string;
  const cookies: Record<string, string> = {};
  const users: Record<string, string> = {};
  const sessions: Record<string, { idHash: string }> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cove-terminal-routes-'));
    store = new SqliteStore(join(dir, 'cove.db'));
    driver = new FakeSandboxDriver();
    const config = buildConfig({
      logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
      regions: [
        { id: 'us-east-1', name: 'US East' },
        { id: 'eu-west-1', name: 'Europe' },
      ],
      sandbox: { maxTerminalsPerUser: 4, graceS: 30 },
    });
    app = await buildApp({ config, store, driverFactory: () => driver });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (const name of ['alice', 'bob', 'carol', 'ctrl-c']) {
      const user = await store.users.create({ username: name });
      const { token, session } = await app.sessions.create(user.id, 'full');
      users[name] = user.id;
      cookies[name] = `cove_session=${token}`;
      sessions[name] = session;
    }
  });

  afterAll(async () => {
    await app?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (who: string, body: unknown = {}, r = region) =>
    app.inject({
      method: 'POST',
      url: `/api/environments/${r}/terminals`,
      headers: { origin, cookie: cookies[who] as string, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
  const create = async (who: string, r = region): Promise<string> => {
    const response = await post(who, {}, r);
    expect(response.statusCode).toBe(201);
    return (response.json() as { terminalId: string }).terminalId;
  };
  const wsUrl = (id: string, r = region) => `ws://${base}/api/environments/${r}/terminals/${id}/ws`;
  const connect = (who: string, id: string, extra: { autoAck?: boolean } = {}) =>
    TerminalTestClient.connect(wsUrl(id), { origin, cookie: cookies[who] as string, ...extra });
  const remove = (who: string, id: string) =>
    app.inject({
      method: 'DELETE',
      url: `/api/environments/${region}/terminals/${id}`,
      headers: { origin, cookie: cookies[who] as string },
    });

  it('creates a terminal, reports phases, and echoes input through the shell', async () => {
    const id = await create('alice');
    const client = await connect('alice', id);
    await client.waitFor(
      () => client.events.some((e) => e.type === 'status' && e.phase === 'ready'),
      'ready',
    );
    client.send('echo hi\r');
    await client.waitForText('echo hi\r');
    const shell = driver.shells.at(-1);
    expect(shell?.options.cmd).toEqual(['bash', '-l']);
    expect(driver.specs.at(-1)?.env).toMatchObject({
      COVE_USER: 'alice',
      COVE_REGION: region,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
    });
    client.close();
    await client.closed;
  });

  it('answers ping with pong, passes resize to the shell, and answers a bad control message with an error event only', async () => {
    const id = await create('alice');
    const client = await connect('alice', id);
    await client.waitFor(() => driver.shells.some((s) => s.options.env?.COVE_TERMINAL_ID === id), 'shell');
    const shell = driver.shells.find((s) => s.options.env?.COVE_TERMINAL_ID === id);
    client.control({ type: 'ping' });
    await client.waitForEvent('pong');
    client.control({ type: 'resize', cols: 132, rows: 43 });
    await client.waitFor(
      () => shell?.resizes.some((r) => r.cols === 132 && r.rows === 43) === true,
      'resize',
    );
    for (const bad of [
      '{"type":"resize","cols":"80","rows":24}',
      '{"type":"resize","cols":0,"rows":24}',
      '{"type":"resize","cols":1e9,"rows":24}',
      '{"type":"resize","cols":1.5,"rows":24}',
      '{"type":',
      '{"__proto__":{"type":"ping"}}',
      '{"type":"nope"}',
      JSON.stringify([[[[[[[[[[]]]]]]]]]]),
    ]) {
      client.control(bad);
    }
    await client.waitFor(
      () => client.events.filter((e) => e.type === 'error').length === 8,
      'eight error events',
    );
    expect(client.events.find((e) => e.type === 'error')).toMatchObject({
      code: 'COVE_ERR_TERMINAL_BAD_MESSAGE',
    });
    expect(shell?.resizes.every((r) => r.cols >= 1 && r.cols <= 500 && Number.isInteger(r.cols))).toBe(true);
    client.send('still here\r');
    await client.waitForText('still here');
    client.close();
  });

  it('refuses the upgrade without a session (401) and with a wrong Origin (403), never with a 101', async () => {
    const id = await create('alice');
    const noCookie = await TerminalTestClient.open(wsUrl(id), { origin });
    expect(isRefusal(noCookie) && noCookie.status).toBe(401);
    const bogus = await TerminalTestClient.open(`${wsUrl(id)}?token=whatever`, {
      origin,
      cookie: 'cove_session=forged',
    });
    expect(isRefusal(bogus) && bogus.status).toBe(401);
    for (const bad of [
      'https://evil.example',
      'null',
      'http://127.0.0.1:8081',
      'HTTP://127.0.0.1:8080',
      'http://127.0.0.1:8080.',
      'http://localhost:8080',
    ]) {
      const result = await TerminalTestClient.open(wsUrl(id), {
        origin: bad,
        cookie: cookies.alice as string,
      });
      expect(isRefusal(result) && result.status, bad).toBe(403);
    }
    const missingOrigin = await TerminalTestClient.open(wsUrl(id), { cookie: cookies.alice as string });
    expect(isRefusal(missingOrigin) && missingOrigin.status).toBe(403);
  });

  it('refuses malformed ids with 400, and closes foreign and missing ids with the same 4404', async () => {
    for (const bad of ['..%2f..%2fetc', '%2e%2e%2f', 'short', 'AAAAAAAAAAAAAAAAAAAA..']) {
      const result = await TerminalTestClient.open(wsUrl(bad), { origin, cookie: cookies.alice as string });
      expect(isRefusal(result) && result.status, bad).toBe(400);
    }
    // Fastify refuses an over-long path parameter (4 KB) as 414 before any route code runs.
    const long = await TerminalTestClient.open(wsUrl('x'.repeat(4096)), {
      origin,
      cookie: cookies.alice as string,
    });
    expect(isRefusal(long) && long.status).toBe(414);
    const bobs = await create('bob');
    const foreign = await connect('alice', bobs);
    const missing = await connect('alice', 'AAAAAAAAAAAAAAAAAAAAAA');
    const wrongRegion = await TerminalTestClient.connect(wsUrl(bobs, 'eu-west-1'), {
      origin,
      cookie: cookies.bob as string,
    });
    const [a, b, c] = await Promise.all([foreign.closed, missing.closed, wrongRegion.closed]);
    expect(a).toEqual({ code: 4404, reason: b.reason });
    expect(b.code).toBe(4404);
    expect(c.code).toBe(4404);
    expect(foreign.events).toEqual(missing.events);
    // Bob's terminal is untouched, and Alice cannot delete it either.
    expect((await remove('alice', bobs)).statusCode).toBe(404);
    const bobClient = await connect('bob', bobs);
    bobClient.send('mine\r');
    await bobClient.waitForText('mine');
    bobClient.close();
  });

  it('closes with 1009 on a frame over 64 KiB and with 1007 on a text frame that is not UTF-8', async () => {
    const id = await create('carol');
    const big = await connect('carol', id);
    big.send(Buffer.alloc(64 * 1024 + 1, 0x61));
    expect((await big.closed).code).toBe(1009);
    const bad = await connect('carol', id);
    bad.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
    expect((await bad.closed).code).toBe(1007);
    const fine = await connect('carol', id);
    fine.send('ok\r');
    await fine.waitForText('ok');
    fine.close();
  });

  it('closes a flooding connection with 4429', async () => {
    const id = await create('carol');
    const client = await connect('carol', id);
    for (let i = 0; i < 6000; i++) client.send('x');
    expect((await client.closed).code).toBe(4429);
  });

  it('stops reading the shell when the page stops acknowledging, and resumes on ack', async () => {
    const id = await create('carol');
    const client = await connect('carol', id, { autoAck: false });
    await client.waitFor(() => driver.shells.some((s) => s.options.env?.COVE_TERMINAL_ID === id), 'shell');
    const shell = driver.shells.find((s) => s.options.env?.COVE_TERMINAL_ID === id);
    if (!shell) throw new Error('no shell');
    await client.waitFor(
      () => client.events.some((e) => e.type === 'status' && e.phase === 'ready'),
      'ready',
    );
    for (let i = 0; i < 40; i++) shell.stream.push(Buffer.alloc(8192, 0x79));
    await client.waitFor(() => client.received >= 128 * 1024, 'output up to the watermark');
    expect(shell.stream.isPaused()).toBe(true);
    const before = client.received;
    await new Promise((r) => setTimeout(r, 100));
    expect(client.received - before).toBeLessThan(64 * 1024);
    client.autoAck = true;
    client.ack();
    await client.waitFor(() => client.received >= 40 * 8192, 'the rest after acking', 5000);
    client.close();
  });

  it('on Ctrl+C while the page is behind, skips the backlog and repaints the screen as it is now', async () => {
    const id = await create('carol');
    const client = await connect('carol', id, { autoAck: false });
    await client.waitFor(() => driver.shells.some((s) => s.options.env?.COVE_TERMINAL_ID === id), 'shell');
    const shell = driver.shells.find((s) => s.options.env?.COVE_TERMINAL_ID === id);
    if (!shell) throw new Error('no shell');
    await client.waitFor(
      () => client.events.some((e) => e.type === 'status' && e.phase === 'ready'),
      'ready',
    );
    const line = Buffer.from('y\r\n'.repeat(2730));
    for (let i = 0; i < 40; i++) shell.stream.push(line);
    await client.waitFor(() => client.received >= 128 * 1024, 'output up to the watermark');
    expect(shell.stream.isPaused()).toBe(true);
    const before = client.received;
    client.send('\x03');
    // The page has acknowledged nothing, yet the shell is no longer held back for it.
    await client.waitFor(() => !shell.stream.isPaused(), 'the shell to flow again');
    shell.stream.push(Buffer.from('^C\r\nprompt-after-interrupt$ '));
    await client.waitFor(() => client.events.some((e) => e.type === 'repaint'), 'a repaint');
    await client.waitForScreen(/prompt-after-interrupt\$/);
    // The skipped part of the flood never went out: the repaint is the screen and a short scrollback.
    expect(client.received - before).toBeLessThan(40 * line.length - 128 * 1024);
    client.autoAck = true;
    client.ack();
    shell.stream.push(Buffer.from('\r\nlive-again'));
    await client.waitForScreen(/live-again/);
    client.close();
  });

  it('on Ctrl+C just after the page caught up with a held-back flood, still skips and repaints', async () => {
    const id = await create('ctrl-c');
    const client = await connect('ctrl-c', id, { autoAck: false });
    await client.waitFor(() => driver.shells.some((s) => s.options.env?.COVE_TERMINAL_ID === id), 'shell');
    const shell = driver.shells.find((s) => s.options.env?.COVE_TERMINAL_ID === id);
    if (!shell) throw new Error('no shell');
    await client.waitFor(
      () => client.events.some((e) => e.type === 'status' && e.phase === 'ready'),
      'ready',
    );
    const line = Buffer.from('y\r\n'.repeat(2730));
    for (let i = 0; i < 20; i++) shell.stream.push(line);
    await client.waitFor(() => client.received >= 128 * 1024, 'output up to the watermark');
    expect(shell.stream.isPaused()).toBe(true);
    // The page renders everything it got: nothing is unacknowledged, but the pipe behind the
    // shell's stream (here: the pushed chunks still queued) is full of output from before the key.
    client.ack();
    await client.waitFor(() => !shell.stream.isPaused(), 'the shell to flow again');
    client.send('\x03');
    shell.stream.push(Buffer.from('^C\r\nprompt-after-interrupt$ '));
    await client.waitFor(() => client.events.some((e) => e.type === 'repaint'), 'a repaint');
    await client.waitForScreen(/prompt-after-interrupt\$/);
    client.close();
  });

  it('replays recent output on reattach and lists terminals with their attachment', async () => {
    const id = await create('bob');
    const first = await connect('bob', id);
    first.send('remember me\r');
    await first.waitForText('remember me');
    first.close();
    await first.closed;
    const list = await app.inject({
      url: `/api/environments/${region}/terminals`,
      headers: { cookie: cookies.bob as string },
    });
    expect(list.statusCode).toBe(200);
    const entry = (list.json() as { terminals: { terminalId: string; attached: boolean }[] }).terminals.find(
      (t) => t.terminalId === id,
    );
    expect(entry).toMatchObject({ terminalId: id, attached: false });
    const second = await connect('bob', id);
    await second.waitForText('remember me');
    second.close();
  });

  it('refuses the terminal over the limit with a clear 429, and a closed one frees its slot', async () => {
    const user = await store.users.create({ username: 'dave' });
    const { token } = await app.sessions.create(user.id, 'full');
    cookies.dave = `cove_session=${token}`;
    const ids = [await create('dave'), await create('dave'), await create('dave'), await create('dave')];
    const refused = await post('dave');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({
      code: 'COVE_ERR_TERMINAL_LIMIT',
      message: 'You have 4 open terminals in us-east-1; close one to open another.',
    });
    // Another region has its own allowance.
    expect((await post('dave', {}, 'eu-west-1')).statusCode).toBe(201);
    expect((await remove('dave', ids[0] as string)).statusCode).toBe(204);
    expect((await post('dave')).statusCode).toBe(201);
  });

  it('validates the region (400 with the allowed list) and refuses unknown and unassigned bindings identically, without starting anything', async () => {
    const bad = await post('alice', {}, 'xx-fake-1');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ regions: ['us-east-1', 'eu-west-1'] });
    const account = await store.accounts.create({ accountId: '123456789012', name: 'Prod' });
    const set = await store.permissionSets.create({
      name: 'ReadOnlyAccess',
      sessionDurationS: 3600,
      roleArnTemplate: 'arn:aws:iam::{accountId}:role/Cove-{name}',
    });
    // Only Bob's environment counts: terminals of earlier tests may still be starting in the background.
    const bobsCalls = () => driver.calls.filter((call) => call.endsWith(`/${users.bob as string}`));
    const callsBefore = bobsCalls().length;
    const unknown = await post('bob', { accountId: '000000000000', permissionSet: 'Nope' });
    const unassigned = await post('bob', { accountId: account.accountId, permissionSet: set.name });
    const half = await post('bob', { accountId: account.accountId });
    expect(unknown.statusCode).toBe(403);
    expect(unassigned.statusCode).toBe(403);
    expect(unassigned.body).toBe(unknown.body);
    expect(half.body).toBe(unknown.body);
    expect(bobsCalls().slice(callsBefore)).toEqual([]);
    await store.assignments.create({
      principalType: 'user',
      principalId: users.bob as string,
      accountId: account.accountId,
      permissionSetId: set.id,
    });
    const allowed = await post('bob', { accountId: account.accountId, permissionSet: set.name });
    expect(allowed.statusCode).toBe(201);
    const list = await app.inject({
      url: `/api/environments/${region}/terminals`,
      headers: { cookie: cookies.bob as string },
    });
    expect((list.json() as { terminals: unknown[] }).terminals).toContainEqual(
      expect.objectContaining({ accountId: '123456789012', permissionSet: 'ReadOnlyAccess' }),
    );
  });

  it('refuses to create without the exact Origin (CSRF)', async () => {
    const response = await app.inject({
      method: 'POST',
      url: `/api/environments/${region}/terminals`,
      headers: {
        origin: 'https://evil.example',
        cookie: cookies.alice as string,
        'content-type': 'application/json',
      },
      payload: '{}',
    });
    expect(response.statusCode).toBe(403);
  });

  it('tells the page when its environment dies (OOM) and closes the terminal', async () => {
    const user = await store.users.create({ username: 'erin' });
    const { token } = await app.sessions.create(user.id, 'full');
    cookies.erin = `cove_session=${token}`;
    const id = await create('erin');
    const client = await connect('erin', id);
    await client.waitFor(
      () => client.events.some((e) => e.type === 'status' && e.phase === 'ready'),
      'ready',
    );
    driver.die({ ownerId: user.id, region });
    const closed = await client.closed;
    expect(closed.code).toBe(1000);
    expect(client.events).toContainEqual({
      type: 'notice',
      kind: 'info',
      message: 'Your environment stopped (out of memory). Restart it to continue; your home is kept.',
    });
    expect(client.events.at(-1)).toEqual({ type: 'exit', code: null, reason: 'environment-stopped' });
  });

  it('stops (never removes) the environment when the last terminal is gone', async () => {
    const user = await store.users.create({ username: 'frank' });
    const { token } = await app.sessions.create(user.id, 'full');
    cookies.frank = `cove_session=${token}`;
    const [a, b] = [await create('frank'), await create('frank')];
    const client = await connect('frank', a);
    await client.waitFor(
      () => client.events.some((e) => e.type === 'status' && e.phase === 'ready'),
      'ready',
    );
    const key = `${region}/${user.id}`;
    expect((await remove('frank', a)).statusCode).toBe(204);
    expect((await client.closed).code).toBe(1000);
    expect(client.events.at(-1)).toEqual({ type: 'exit', code: null, reason: 'closed' });
    expect(driver.calls).not.toContain(`stop ${key}`);
    expect((await remove('frank', b)).statusCode).toBe(204);
    await new Promise((r) => setTimeout(r, 20));
    expect(driver.calls).toContain(`stop ${key}`);
    expect(driver.calls).not.toContain(`remove ${key}`);
  });

  it('closes the sockets of a revoked session with 4401', async () => {
    const user = await store.users.create({ username: 'gina' });
    const { token, session } = await app.sessions.create(user.id, 'full');
    cookies.gina = `cove_session=${token}`;
    const id = await create('gina');
    const client = await connect('gina', id);
    await client.waitForEvent('status');
    await app.sessions.destroy(session);
    expect((await client.closed).code).toBe(4401);
    const after = await TerminalTestClient.open(wsUrl(id), { origin, cookie: cookies.gina as string });
    expect(isRefusal(after) && after.status).toBe(401);
  });

  it('passes the shell exit code to the page', async () => {
    const user = await store.users.create({ username: 'hank' });
    const { token } = await app.sessions.create(user.id, 'full');
    cookies.hank = `cove_session=${token}`;
    const id = await create('hank');
    const client = await connect('hank', id);
    await client.waitFor(() => driver.shells.some((s) => s.options.env?.COVE_TERMINAL_ID === id), 'shell');
    driver.shells.find((s) => s.options.env?.COVE_TERMINAL_ID === id)?.exit(3);
    await client.closed;
    expect(client.events.at(-1)).toEqual({ type: 'exit', code: 3, reason: 'exit' });
  });

  it('closes open sockets with 1001 when the server shuts down', async () => {
    const id = await create('alice');
    const client = await connect('alice', id);
    await client.waitForEvent('status');
    await app.close();
    expect((await client.closed).code).toBe(1001);
  });
});
