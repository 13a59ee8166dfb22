/**
 * F03: the real Cove process stopped with SIGTERM or SIGKILL while a job runs in a terminal, then
 * started again on the same data dir and port. The job finishes in the same shell after the
 * restart; a container removed while Cove was down is no phantom (its terminal closes with 4404)
 * and a new terminal works. Containers of the run's user are removed in afterAll.
 */
import { execFile } from 'node:child_process';
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
      client.send(`sleep 8; ${done.command}\r`);
      await sleep(500);

      const exit = await cove.stop(signal);
      expect(exit.signal ?? exit.code).toBe(signal === 'SIGTERM' ? 0 : 'SIGKILL');
      const closed = await client.closed;
      // A graceful stop says "going away"; a killed process just drops the socket (1006).
      expect(closed.code).toBe(signal === 'SIGTERM' ? CloseCode.goingAway : 1006);
      expect(client.screen).not.toMatch(done.printed);

      await start();
      const again = await connect(id);
      await again.waitForScreen(done.printed, 20_000);
      again.send('echo "same-[$(cat /tmp/shell-pid-$COVE_TERMINAL_ID)]-[$$]"\r');
      // The very shell from before the restart: its PID matches the one it wrote down.
      await again.waitForScreen(/^same-\[(\d+)\]-\[\1\]$/m, 10_000);
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
});
