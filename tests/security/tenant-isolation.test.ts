/**
 * SECURITY-TESTS I01 with two real users and real containers: Alice tries to reach Bob's terminal
 * through the path, the query string and the first control message. The path gets the same 4404
 * as an id that never existed; the query and the message are never read, so Alice only ever
 * lands in her own shell. Checked from Bob's side: his screen and his shell's history stay his.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../server/protocol/terminal-wire.js';
import { TerminalTestClient } from '../unit/server/terminals/ws-test-client.js';
import {
  HomeTestServer,
  MiB,
  origin,
  regionA,
  type HomeTestUser,
} from '../integration/server/homes/home-test-server.js';

describe('I01 tenant isolation of terminals (real Docker)', () => {
  let server: HomeTestServer;
  let alice: HomeTestUser;
  let bob: HomeTestUser;

  beforeAll(async () => {
    server = await HomeTestServer.start({ homeSizeBytes: 64 * MiB });
    alice = await server.user('alice');
    bob = await server.user('bob');
  });
  afterAll(async () => {
    await server?.destroy();
  });

  const wsUrl = (id: string, query = '') =>
    `ws://${server.base}/api/environments/${regionA}/terminals/${id}/ws${query}`;
  const open = async (user: HomeTestUser, id: string, query = '', hello?: Record<string, unknown>) => {
    const client = await TerminalTestClient.connect(wsUrl(id, query), {
      origin,
      cookie: user.cookie,
      ...(hello ? { hello: false as const } : {}),
    });
    if (hello) client.control(hello);
    server.clients.push(client);
    return client;
  };
  const create = async (user: HomeTestUser): Promise<string> => {
    const created = await server.request(user, 'POST', `/api/environments/${regionA}/terminals`, {});
    expect(created.statusCode, created.body).toBe(201);
    return created.json<{ terminalId: string }>().terminalId;
  };
  /** Types a command whose output only the shell can produce (the marker is built by `$((…))`). */
  const mark = async (client: TerminalTestClient, tag: string): Promise<void> => {
    client.send(`echo ${tag}-$((20+22))\r`);
    await client.waitForScreen(`${tag}-42`, 20_000);
  };

  it("I01 Bob's terminal id in the path, the query or the first message never reaches Bob's shell; Alice stays in her own", async () => {
    const bobId = await create(bob);
    const bobClient = await open(bob, bobId);
    await bobClient.waitForPrompt(30_000);
    const aliceId = await create(alice);
    const aliceClient = await open(alice, aliceId);
    await aliceClient.waitForPrompt(30_000);

    // Path: the same close as an id that never existed (code and reason), and no attach.
    const foreign = await TerminalTestClient.open(wsUrl(bobId), { origin, cookie: alice.cookie });
    const missing = await TerminalTestClient.open(wsUrl('ZZZZZZZZZZZZZZZZZZZZZZ'), {
      origin,
      cookie: alice.cookie,
    });
    if (!(foreign instanceof TerminalTestClient) || !(missing instanceof TerminalTestClient))
      throw new Error('expected both upgrades to complete and then close');
    const [f, m] = await Promise.all([foreign.closed, missing.closed]);
    expect(f).toEqual(m);
    expect(f).toEqual({ code: CloseCode.notFound, reason: 'No such terminal. Open a new one.' });
    expect(foreign.events).toEqual(missing.events);
    expect(foreign.received).toBe(0);

    // Query: `?terminalId=` and `?id=` are not read; Alice lands in her own terminal.
    for (const query of [`?terminalId=${bobId}`, `?id=${bobId}`, `?terminalId=${bobId}&id=${bobId}`]) {
      const viaQuery = await open(alice, aliceId, query);
      await mark(viaQuery, `alice-query${query.length}`);
      viaQuery.close();
    }

    // First message: a hello carrying Bob's id (and other routing-like fields) is just a hello.
    const viaHello = await open(alice, aliceId, '', {
      type: 'hello',
      v: 1,
      cols: 80,
      rows: 24,
      terminalId: bobId,
      id: bobId,
      ownerId: bob.id,
    });
    await mark(viaHello, 'alice-hello');
    expect(viaHello.events.filter((e) => e.type === 'error')).toEqual([]);
    // The same hello on Bob's path is still a 4404.
    const helloOnBob = await TerminalTestClient.open(wsUrl(bobId), {
      origin,
      cookie: alice.cookie,
      hello: false,
    });
    if (!(helloOnBob instanceof TerminalTestClient)) throw new Error('expected the upgrade to complete');
    helloOnBob.control({ type: 'hello', v: 1, cols: 80, rows: 24, terminalId: aliceId });
    helloOnBob.send('echo leaked-$((1+1))\r');
    expect((await helloOnBob.closed).code).toBe(CloseCode.notFound);
    viaHello.close();

    // Alice's original page is unaffected and sees her own markers.
    await mark(aliceClient, 'alice-still');
    expect(aliceClient.screen).toContain('alice-hello-42');

    // Bob's side: his page shows none of Alice's input, his shell's history has only his commands.
    await mark(bobClient, 'bob-own');
    expect(bobClient.screen).not.toMatch(/alice|leaked/);
    expect(bobClient.text).not.toMatch(/alice|leaked/);
    bobClient.send("history | grep -c -e 'ali[c]e' -e 'leak[e]d'; echo hist-done-$((1+1))\r");
    await bobClient.waitForScreen(/^0\s*$[\s\S]*hist-done-2/m, 20_000);
    expect(server.app.terminals.list(bob.id).map((t) => t.id)).toEqual([bobId]);
    expect(server.app.terminals.list(alice.id).map((t) => t.id)).toEqual([aliceId]);
    const health = await server.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
  });
});
