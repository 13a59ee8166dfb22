/**
 * F03: the real Cove process stopped with SIGTERM or SIGKILL while a job runs in a terminal, then
 * started again on the same data dir and port. The job finishes in the same shell after the
 * restart; a container removed while Cove was down is no phantom (its terminal closes with 4404)
 * and a new terminal works; a container killed (left exited) while Cove was down shows as stopped
 * and starts again; a credentials token from before the restart is refused (403) by the new
 * process once its container stopped or went, also after the environment runs again.
 * Containers of the run's user are removed in afterAll.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../server/protocol/terminal-wire.js';
import {
  CoveProcess,
  containersOf,
  coveSite,
  disposeSite,
  docker,
  signInAdmin,
  type CoveSite,
} from '../helpers/cove-process.js';
import { TerminalTestClient } from '../unit/server/terminals/ws-test-client.js';

const run = promisify(execFile);
const region = 'us-east-1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The numbers of the screen's `line-N` lines, top to bottom. */
const numberedLines = (screen: string) => [...screen.matchAll(/^line-(\d+)$/gm)].map((m) => Number(m[1]));
/** A token as credential-tokens.ts issues it: `<terminalId>.<mac>`. */
const tokenShape = /tok-\[([A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})\]/;

type SocketAnswer = { status: number; code: unknown } | { error: string };

/** One GET on the credentials socket from the host, as the forwarder in the container sends it. */
function askSocket(socketPath: string, token: string): Promise<SocketAnswer> {
  return new Promise((resolveAnswer) => {
    const req = request(
      { socketPath, path: '/v1/credentials', agent: false, headers: { authorization: token } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { code?: unknown };
          resolveAnswer({ status: res.statusCode ?? 0, code: body.code });
        });
      },
    );
    // Nobody listening (a stale socket file, or none) is an answer too: it hands out nothing.
    req.on('error', (error: NodeJS.ErrnoException) => resolveAnswer({ error: error.code ?? error.message }));
    req.end();
  });
}
/** A token the server verified: the terminal has no account, so it gets that 403, not the token's. */
const accepted = { status: 403, code: 'COVE_ERR_CREDENTIALS_NO_ACCOUNT' };
const refused = { status: 403, code: 'COVE_ERR_CREDENTIALS_TOKEN_INVALID' };

describe('F03 Cove server restart (real process, real engine)', () => {
  let site: CoveSite;
  let cove: CoveProcess;
  const processes: CoveProcess[] = [];
  const clients: TerminalTestClient[] = [];
  let cookie = '';
  let ownerId = '';

  const start = async () => {
    cove = await CoveProcess.start(site);
    processes.push(cove);
  };

  beforeAll(async () => {
    site = await coveSite({ homes: { enabled: false }, sandbox: { memoryBytes: 256 * 1024 ** 2 } });
    await start();
    ({ cookie, userId: ownerId } = await signInAdmin(site));
  });

  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    await disposeSite(site, processes, ownerId ? [ownerId] : []);
  });

  const create = async (): Promise<string> => {
    const response = await fetch(`${site.origin}/api/environments/${region}/terminals`, {
      method: 'POST',
      headers: { origin: site.origin, cookie, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status, await response.clone().text()).toBe(201);
    return ((await response.json()) as { terminalId: string }).terminalId;
  };
  const connect = async (id: string) => {
    const client = await TerminalTestClient.connect(
      `ws://127.0.0.1:${site.port}/api/environments/${region}/terminals/${id}/ws`,
      { origin: site.origin, cookie, hello: { cols: 100, rows: 30 } },
    );
    clients.push(client);
    return client;
  };
  /** The environment's socket, where credential-delivery.ts puts it (a hash, never the user name). */
  const socketPath = () => {
    const hash = createHash('sha256').update(`cove-env\0${ownerId}\0${region}`).digest('hex');
    return join(site.dataDir, 'run', 'credentials', hash.slice(0, 24), 'creds.sock');
  };
  /** The status line's view of the environment. */
  const environmentState = async () => {
    const response = await fetch(`${site.origin}/api/environments/${region}`, { headers: { cookie } });
    expect(response.status, await response.clone().text()).toBe(200);
    return ((await response.json()) as { status: string }).status;
  };
  /** The engine's view: id and state of every container of the run's user. */
  const containers = async () => {
    const ids = await containersOf(ownerId);
    if (ids.length === 0) return [];
    const { stdout } = await run(docker, ['inspect', '--format', '{{.Id}} {{.State.Status}}', ...ids]);
    return stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [id = '', state = ''] = line.split(' ');
        return { id, state };
      });
  };
  /** The shell's own token, printed by the shell (the typed line has `%s`, not the token). */
  const tokenOf = async (client: TerminalTestClient) => {
    client.send(`printf 'tok-[%s]\\n' "$COVE_CREDENTIALS_TOKEN"\r`);
    await client.waitForScreen(tokenShape, 10_000);
    return tokenShape.exec(client.screen)?.[1] ?? '';
  };
  /** A marker the typed command line cannot match: the shell computes it. */
  const marker = () => {
    const a = 1000 + Math.floor(Math.random() * 9000);
    const b = 1000 + Math.floor(Math.random() * 9000);
    return { command: `echo done-$((${a}+${b}))-marker`, printed: new RegExp(`^done-${a + b}-marker$`, 'm') };
  };

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`F03 a job started before a ${signal} finishes in the same shell after the next start`, async () => {
      const id = await create();
      const client = await connect(id);
      await client.waitForPrompt(30_000);
      client.send('echo "$$" > /tmp/shell-pid-$COVE_TERMINAL_ID\r');
      const done = marker();
      // The job ends when the test says so, after the reattach: output printed while no server is
      // attached is not kept (README, "Terminals that survive"), and a restart's length varies.
      const flag = `/tmp/go-${id}`;
      client.send(`while [ ! -e ${flag} ]; do sleep 0.2; done; ${done.command}\r`);
      await sleep(500);

      const exit = await cove.stop(signal);
      expect(exit.signal ?? exit.code).toBe(signal === 'SIGTERM' ? 0 : 'SIGKILL');
      const closed = await client.closed;
      // A graceful stop says "going away"; a killed process just drops the socket (1006).
      expect(closed.code).toBe(signal === 'SIGTERM' ? CloseCode.goingAway : 1006);
      expect(client.screen).not.toMatch(done.printed);

      await start();
      const again = await connect(id);
      await again.waitFor(
        () => again.events.some((e) => e.type === 'status' && e.phase === 'ready'),
        'the held shell reattached',
        20_000,
      );
      const [container] = await containers();
      await run(docker, ['exec', '-u', '1000', container?.id ?? '', 'touch', flag]);
      await again.waitForScreen(done.printed, 20_000);
      again.send('echo "same-[$(cat /tmp/shell-pid-$COVE_TERMINAL_ID)]-[$$]"\r');
      // The very shell from before the restart: its PID matches the one it wrote down.
      await again.waitForScreen(/^same-\[(\d+)\]-\[\1\]$/m, 10_000);
    });
  }

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`F03 what a shell prints while Cove is down (${signal}) reaches the page after the restart: every line once, in order`, async () => {
      const id = await create();
      const client = await connect(id);
      await client.waitForPrompt(30_000);
      const done = marker();
      client.send(`for i in $(seq 1 300); do echo line-$i; sleep 0.02; done; ${done.command}\r`);
      await client.waitForScreen(/^line-20$/m, 10_000);
      await cove.stop(signal);
      await client.closed;
      const printedBefore = numberedLines(client.screen);
      // The job goes on printing while no Cove is attached.
      await sleep(2_000);
      await start();
      // A fresh page (a new socket's screen starts empty): it gets the mirror's repaint.
      const again = await connect(id);
      await again.waitForScreen(done.printed, 30_000);
      expect(printedBefore.length).toBeLessThan(300);
      expect(numberedLines(again.screen)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
      again.send('echo after-$((8*8))\r');
      await again.waitForScreen(/^after-64$/m, 10_000);
    });
  }

  it('F03 a container removed while Cove was down is no phantom: 4404, and a new terminal works', async () => {
    const id = await create();
    const client = await connect(id);
    await client.waitForPrompt(30_000);
    await cove.stop('SIGTERM');
    await client.closed;

    const ids = await containersOf(ownerId);
    expect(ids.length).toBeGreaterThan(0);
    await run(docker, ['rm', '-f', ...ids]);
    await start();

    const probe = await connect(id);
    expect((await probe.closed).code).toBe(CloseCode.notFound);
    const list = await fetch(`${site.origin}/api/environments/${region}/terminals`, { headers: { cookie } });
    expect(list.status).toBe(200);
    const { terminals } = (await list.json()) as { terminals: { terminalId: string }[] };
    expect(terminals.map((t) => t.terminalId)).not.toContain(id);

    const fresh = await connect(await create());
    await fresh.waitForPrompt(30_000);
    fresh.send('echo fresh-$((20+22))\r');
    await fresh.waitForScreen(/^fresh-42$/m);
  });
  it('F03 a container killed (not removed) while Cove was down shows as stopped, no phantom', async () => {
    const id = await create();
    const client = await connect(id);
    await client.waitForPrompt(30_000);
    const [before] = await containers();
    expect(before?.state).toBe('running');

    await cove.stop('SIGKILL');
    await client.closed;
    await run(docker, ['kill', before?.id ?? '']);
    expect(await containers()).toEqual([{ id: before?.id, state: 'exited' }]);
    await start();

    // Not re-adopted (its held shell died with the container): the terminal is gone, not "running".
    const probe = await connect(id);
    expect((await probe.closed).code).toBe(CloseCode.notFound);
    expect(await environmentState()).toBe('stopped');
    const list = await fetch(`${site.origin}/api/environments/${region}/terminals`, { headers: { cookie } });
    expect(list.status).toBe(200);
    const { terminals } = (await list.json()) as { terminals: { terminalId: string }[] };
    expect(terminals.map((t) => t.terminalId)).not.toContain(id);
    // Looking did not start it.
    expect(await containers()).toEqual([{ id: before?.id, state: 'exited' }]);

    const fresh = await connect(await create());
    await fresh.waitForPrompt(30_000);
    fresh.send('echo again-$((40+2))\r');
    await fresh.waitForScreen(/^again-42$/m);
    // The stopped container is started again (same spec), not replaced by a second one.
    expect(await containers()).toEqual([{ id: before?.id, state: 'running' }]);
    expect(await environmentState()).toBe('running');
  });

  it('F03 I04 a token from before the restart is refused by the restarted process once its container is gone', async () => {
    const first = await connect(await create());
    await first.waitForPrompt(30_000);
    const old = await tokenOf(first);
    expect(await askSocket(socketPath(), old)).toEqual(accepted);
    const [incarnation] = await containers();

    // Killed, left exited: the restarted process listens for the environment it adopted as stopped.
    await cove.stop('SIGKILL');
    await first.closed;
    await run(docker, ['kill', incarnation?.id ?? '']);
    await start();
    expect(await askSocket(socketPath(), old)).toEqual(refused);

    // Started again (same container, new start time): the old token stays refused, a new one works.
    const second = await connect(await create());
    await second.waitForPrompt(30_000);
    expect(await containers()).toEqual([{ id: incarnation?.id, state: 'running' }]);
    const next = await tokenOf(second);
    expect(next).not.toBe(old);
    expect(await askSocket(socketPath(), next)).toEqual(accepted);
    expect(await askSocket(socketPath(), old)).toEqual(refused);

    // Removed while Cove was down: nobody answers on its socket, and the new container refuses both.
    await cove.stop('SIGKILL');
    await second.closed;
    await run(docker, ['rm', '-f', incarnation?.id ?? '']);
    await start();
    for (const token of [old, next]) expect(await askSocket(socketPath(), token)).toHaveProperty('error');
    const third = await connect(await create());
    await third.waitForPrompt(30_000);
    const [replacement] = await containers();
    expect(replacement?.id).not.toBe(incarnation?.id);
    const last = await tokenOf(third);
    expect(await askSocket(socketPath(), last)).toEqual(accepted);
    for (const token of [old, next]) expect(await askSocket(socketPath(), token)).toEqual(refused);
  });
});
