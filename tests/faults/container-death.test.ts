/**
 * F04: an environment with a small memory limit (128 MiB) in the real Cove process. A process that
 * outgrows it is OOM-killed (the page gets a notice, the shell lives on); when the container then
 * dies (killed through the Docker API: the container user cannot kill init) the page reads "Your
 * environment stopped (out of memory)" with an exit event, and the next terminal starts the
 * environment again with `$HOME` as it was. A plain death says "stopped" without the OOM words.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('F04 environment death: OOM and exit (real process, real engine)', () => {
  let site: CoveSite;
  let cove: CoveProcess;
  const clients: TerminalTestClient[] = [];
  let cookie = '';
  let ownerId = '';

  beforeAll(async () => {
    site = await coveSite({
      homes: { sizeBytes: 64 * 1024 ** 2, reserveBytes: 0 },
      sandbox: { memoryBytes: 128 * 1024 ** 2 },
    });
    cove = await CoveProcess.start(site);
    ({ cookie, userId: ownerId } = await signInAdmin(site));
  });

  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    await disposeSite(site, cove ? [cove] : [], ownerId ? [ownerId] : []);
  });

  const shell = async () => {
    const response = await fetch(`${site.origin}/api/environments/${region}/terminals`, {
      method: 'POST',
      headers: { origin: site.origin, cookie, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status, await response.clone().text()).toBe(201);
    const { terminalId } = (await response.json()) as { terminalId: string };
    const client = await TerminalTestClient.connect(
      `ws://127.0.0.1:${site.port}/api/environments/${region}/terminals/${terminalId}/ws`,
      { origin: site.origin, cookie, hello: { cols: 100, rows: 30 } },
    );
    clients.push(client);
    await client.waitForPrompt(30_000);
    return client;
  };
  const notices = (client: TerminalTestClient) =>
    client.events.flatMap((e) => (e.type === 'notice' ? [e.message] : []));
  const killContainer = async () => {
    const ids = await containersOf(ownerId);
    expect(ids).toHaveLength(1);
    await run(docker, ['kill', ...ids]);
  };

  it('F04 an OOM kill gives a notice; the environment dying then reads "out of memory"; $HOME is kept', async () => {
    const client = await shell();
    client.send('echo kept-$((6*7)) > ~/kept.txt; echo wrote-$((1+1))\r');
    await client.waitForScreen(/^wrote-2$/m);

    client.send(`python3 -c "b = b'x' * (400 * 1024 * 1024)"; echo "after-oom-[$?]"\r`);
    // SIGKILL from the kernel's OOM killer: 128 + 9.
    await client.waitForScreen(/^after-oom-\[137\]$/m, 30_000);
    await client.waitFor(
      () => notices(client).some((m) => /out of memory/.test(m)),
      'an out-of-memory notice',
      15_000,
    );
    expect(client.ws.readyState).toBe(client.ws.OPEN);

    await killContainer();
    const exit = await client.waitForEvent('exit', 15_000);
    expect(exit).toMatchObject({ reason: 'environment-stopped' });
    expect(notices(client)).toContain(
      'Your environment stopped (out of memory). Restart it to continue; your home is kept.',
    );
    expect((await client.closed).code).toBe(1000);
    expect(cove.running).toBe(true);

    const again = await shell();
    again.send('echo "home-[$(cat ~/kept.txt)]"\r');
    await again.waitForScreen(/^home-\[kept-42\]$/m);
  });

  it('F04 a container that dies without an OOM says the environment stopped, and restarts', async () => {
    const client = await shell();
    await killContainer();
    await client.waitForEvent('exit', 15_000);
    expect(client.events.find((e) => e.type === 'exit')).toMatchObject({ reason: 'environment-stopped' });
    const stopped = notices(client).filter((m) => m.startsWith('Your environment stopped'));
    expect(stopped).toEqual(['Your environment stopped. Restart it to continue; your home is kept.']);

    const again = await shell();
    again.send('echo "home-[$(cat ~/kept.txt)]"\r');
    await again.waitForScreen(/^home-\[kept-42\]$/m);
  });
});
