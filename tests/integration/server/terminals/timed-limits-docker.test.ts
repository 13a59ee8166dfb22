/**
 * The timed and counted limits once each against the real engine, with short configured times
 * (seconds, not minutes): the idle warning and the idle close, the maximum age, the per-user
 * socket cap, the weekly shell-time quota counted from a real environment's run time, and an
 * environment left without terminals by a restart being stopped (not removed) after the idle time. The edges (exact
 * boundaries, restarts, week changes) stay with the fake-clock tests in tests/unit/server and
 * tests/integration/server/usage.
 */
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerSandboxDriver } from '../../../../sandbox/docker/docker-sandbox-driver.js';
import { CloseCode } from '../../../../server/protocol/terminal-wire.js';
import { DockerTerminalRig, rigOrigin, rigRegion } from './docker-terminal-rig.js';

const idleTimeoutS = 10;
const idleWarningS = 6;
const socketCap = 3;
/** Longer than the idle test takes (about 15 s), so only the max-age test meets it. */
const maxSessionAgeS = 25;

describe('timed and counted limits on Docker', () => {
  let rig: DockerTerminalRig;

  beforeAll(async () => {
    rig = await DockerTerminalRig.start('cove-timed-limits', {
      graceS: 30,
      hello: { cols: 80, rows: 24 },
      config: {
        sandbox: { idleTimeoutS, idleWarningS, maxSessionAgeS },
        terminals: { maxSocketsPerUser: socketCap },
        usage: { tickS: 1 },
      },
    });
    for (const name of ['idler', 'sockets', 'student', 'busy']) await rig.signIn(name);
  });

  afterAll(async () => {
    await rig?.close();
  });

  it('warns before the idle timeout, a key press resets it, and an idle terminal closes with its shell', async () => {
    // The idle clock starts when the terminal is created.
    const openedAt = Date.now();
    const { id, client } = await rig.shell('idler');
    const key = { ownerId: rig.userIds[0] as string, region: rigRegion };
    // A stopped environment holds no shells (it stops once its last terminal is closed).
    const heldShells = () =>
      rig.app.environments
        .driver(rigRegion)
        .listHeldShells(key)
        .catch((error: { code?: string }): string[] => {
          if (error.code === 'COVE_ERR_SANDBOX_NOT_RUNNING') return [];
          throw error;
        });
    expect(await heldShells()).toContain(id);
    const warning = await client.waitForEvent('notice', idleTimeoutS * 1000 + 10_000);
    expect(warning).toMatchObject({ kind: 'idle-warning' });
    expect(warning.type === 'notice' && warning.message).toMatch(/closes in .* without input\. Press a key/);
    // Not before the warning time (a warning at once would be no warning).
    expect(Date.now() - openedAt).toBeGreaterThanOrEqual((idleTimeoutS - idleWarningS) * 1000 - 1000);

    // Input resets the clock: still open after the original deadline.
    client.send('echo kept-$((1+1))\r');
    await client.waitForScreen(/^kept-2$/m);
    const typedAt = Date.now();
    while (Date.now() - openedAt < idleTimeoutS * 1000 + 1000) await new Promise((r) => setTimeout(r, 200));
    expect(client.ws.readyState).toBe(client.ws.OPEN);

    // Then nothing more: closed about idleTimeoutS after the last input, saying why.
    const exit = await client.waitForEvent('exit', idleTimeoutS * 1000 + 10_000);
    expect(exit).toMatchObject({ type: 'exit', reason: 'idle' });
    expect(Date.now() - typedAt).toBeGreaterThanOrEqual(idleTimeoutS * 1000 - 1000);
    expect((await client.closed).code).toBe(CloseCode.normal);
    expect(rig.app.terminals.get(rig.userIds[0] as string, id)).toBeUndefined();
    // The held shell in the container is gone too, not only the socket.
    const goneBy = Date.now() + 10_000;
    while ((await heldShells()).includes(id) && Date.now() < goneBy)
      await new Promise((r) => setTimeout(r, 200));
    expect(await heldShells()).not.toContain(id);
  }, 60_000);

  it('closes a terminal at its maximum age even while it is in use', async () => {
    const createdAt = Date.now();
    const { client } = await rig.shell('busy');
    // Typing every 3 s keeps it from ever being idle.
    let n = 0;
    const typing = setInterval(() => client.send(`echo busy-${n++}\r`), 3000);
    try {
      const exit = await client.waitForEvent('exit', (maxSessionAgeS + 15) * 1000);
      expect(exit).toMatchObject({ type: 'exit', reason: 'max-age' });
      // Said in words before the socket closes.
      const notice = client.events.find(
        (e) => e.type === 'notice' && /terminals last at most/.test(e.message),
      );
      expect(notice?.type === 'notice' && notice.message).toBe(
        'This terminal closed: terminals last at most 25 seconds. Open a new one to go on; your files are kept.',
      );
      expect(Date.now() - createdAt).toBeGreaterThanOrEqual(maxSessionAgeS * 1000 - 1000);
      expect(n).toBeGreaterThan(idleTimeoutS / 3);
      expect((await client.closed).code).toBe(CloseCode.normal);
    } finally {
      clearInterval(typing);
    }
  }, 60_000);

  it('caps one user at the configured number of sockets (4429) and frees a slot when one closes', async () => {
    const id = await rig.create('sockets');
    const open = [];
    for (let i = 0; i < socketCap; i++) open.push(await rig.connect('sockets', id));
    await open[0]?.waitForPrompt(20_000);
    const over = await rig.connect('sockets', id);
    const refused = await over.closed;
    expect(refused.code).toBe(CloseCode.rateLimited);
    expect(refused.reason).toMatch(/too many/i);
    // The sockets under the cap still work.
    open[socketCap - 1]?.send('echo capped-$((2+2))\r');
    await open[socketCap - 1]?.waitForScreen(/^capped-4$/m);
    // One closes: the next one is let in.
    open[0]?.ws.close(1000);
    await open[0]?.closed;
    const again = await rig.connect('sockets', id);
    again.send('echo freed-$((3+3))\r');
    await again.waitForScreen(/^freed-6$/m);
  }, 60_000);

  it('counts a real environment’s run time against a weekly limit and then refuses new shells', async () => {
    const group = await rig.app.directory.createGroup({ name: `quota-${process.pid}`, weeklyUsageLimitS: 3 });
    const studentId = rig.userIds[2] as string;
    await rig.store.groups.addMember(group.id, studentId);
    const { client } = await rig.shell('student');
    client.send('echo counted\r');
    await client.waitForScreen(/^counted$/m);
    // One-second ticks: the quota runs out a few seconds into the environment's life.
    let refused: Awaited<ReturnType<typeof rig.app.inject>> | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const response = await rig.app.inject({
        method: 'POST',
        url: `/api/environments/${rigRegion}/terminals`,
        headers: { origin: rigOrigin, cookie: rig.cookie('student'), 'content-type': 'application/json' },
        payload: '{}',
      });
      if (response.statusCode === 429) {
        refused = response;
        break;
      }
      expect(response.statusCode, response.body).toBe(201);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(refused?.json()).toMatchObject({
      code: 'COVE_ERR_USAGE_QUOTA_EXHAUSTED',
      message: expect.stringMatching(/^You have used your .* of shell time this week\. It resets /),
      limitS: 3,
    });
    expect(Number(refused?.headers['retry-after'])).toBeGreaterThan(0);
    // The shell already open keeps running.
    client.send('echo still-here\r');
    await client.waitForScreen(/^still-here$/m);
  }, 60_000);
});

describe('an environment orphaned by a restart, on Docker', () => {
  let rig: DockerTerminalRig;

  beforeAll(async () => {
    rig = await DockerTerminalRig.start('cove-orphans', {
      graceS: 30,
      hello: { cols: 80, rows: 24 },
      config: { sandbox: { idleTimeoutS, idleWarningS } },
    });
    await rig.signIn('left');
  });

  afterAll(async () => {
    await rig?.close();
  });

  it('is stopped, not removed, once it has had no terminal for the idle time after the restart', async () => {
    const key = { ownerId: rig.userIds[0] as string, region: rigRegion };
    const { client } = await rig.shell('left');
    client.send('echo before > /tmp/marker\r');
    await client.waitForScreen(/\$ $/m);
    const engine = new DockerSandboxDriver({ docker: new Docker({ socketPath: '/var/run/docker.sock' }) });
    const before = await engine.status(key);
    expect(before.state).toBe('running');

    // While the server is down its terminal's shell ends, so nothing is left to re-adopt.
    await rig.stop();
    await engine.exec(key, ['sh', '-c', 'pkill -f cove-holder; true']);
    await rig.listen();
    const restartedAt = Date.now();
    expect(rig.app.terminals.list(key.ownerId)).toEqual([]);
    expect((await engine.status(key)).state).toBe('running');

    let status = await engine.status(key);
    while (status.state === 'running' && Date.now() - restartedAt < (idleTimeoutS + 20) * 1000) {
      await new Promise((r) => setTimeout(r, 500));
      status = await engine.status(key);
    }
    expect(status).toMatchObject({ state: 'stopped', id: before.id });
    // Not before the idle time: a server sharing an engine must not stop others' environments at once.
    expect(Date.now() - restartedAt).toBeGreaterThanOrEqual(idleTimeoutS * 1000 - 1000);
  }, 90_000);
});
