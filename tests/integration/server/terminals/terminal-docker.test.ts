/**
 * Terminals against the real Docker engine: a listening server on loopback, a real `ws` client,
 * a real SQLite file and real containers from cove/sandbox:latest. Every container this file
 * creates belongs to users made here (fresh ids per run) and is removed in afterAll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TerminalService } from '../../../../server/terminals/terminal-service.js';
import { isRefusal, TerminalTestClient } from '../../../unit/server/terminals/ws-test-client.js';
import { DockerTerminalRig, rigOrigin, rigRegion } from './docker-terminal-rig.js';

const origin = rigOrigin;
const region = rigRegion;

describe('terminals on Docker', () => {
  let rig: DockerTerminalRig;

  beforeAll(async () => {
    rig = await DockerTerminalRig.start('cove-terminal-docker', { graceS: 2, hello: { cols: 80, rows: 24 } });
    for (const name of ['alice', 'bob', 'carol', 'dave']) await rig.signIn(name);
  });

  afterAll(async () => {
    await rig?.close();
  });

  it('gives a prompt and runs a command: echo $((6*7)) prints 42', async () => {
    const { client } = await rig.shell('alice');
    expect(client.events).toContainEqual({ type: 'status', phase: 'ready' });
    client.send('echo $((6*7))\r');
    await client.waitForScreen(/^42$/m);
  });

  it('applies resize (seen by stty size), and a bad resize gets an error event while the shell still echoes', async () => {
    const { client } = await rig.shell('alice');
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
    const id = await rig.create('alice');
    const foreignOrigin = await TerminalTestClient.open(rig.wsUrl(id), {
      origin: 'https://evil.example',
      cookie: rig.cookie('alice'),
    });
    expect(isRefusal(foreignOrigin) && foreignOrigin.status).toBe(403);
    const noCookie = await TerminalTestClient.open(rig.wsUrl(id), { origin });
    expect(isRefusal(noCookie) && noCookie.status).toBe(401);
  });

  it("treats another user's terminal id exactly like a missing one (4404), and leaves it alone", async () => {
    const { id, client: owner } = await rig.shell('bob');
    const intruder = await rig.connect('alice', id);
    const missing = await rig.connect('alice', 'AAAAAAAAAAAAAAAAAAAAAA');
    const [a, b] = await Promise.all([intruder.closed, missing.closed]);
    expect(a.code).toBe(4404);
    expect(a).toEqual(b);
    expect(intruder.text).toBe('');
    owner.send('echo bob-$((2*3))\r');
    await owner.waitForScreen('bob-6');
  });

  it('closes a frame over 64 KiB with 1009', async () => {
    const { id } = await rig.shell('alice');
    const client = await rig.connect('alice', id);
    client.send(Buffer.alloc(70 * 1024, 0x61));
    expect((await client.closed).code).toBe(1009);
  });

  it('stops reading `yes` while a client stops reading (nothing piles up in the server), and Ctrl-C works once it reads again', async () => {
    const { id, client } = await rig.shell('carol');
    const carol = rig.userIds[2] as string;
    client.send('yes\r');
    // The holder passes every byte on; flow control holds `yes` back while the page is behind.
    await client.waitFor(() => client.received > 32 * 1024, 'a flood of yes');
    const socket = (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    // Once the buffers on the way are full the server stops reading the shell's output (it does
    // not take it into memory): the byte count its mirror has seen stops growing.
    const fed = () => rig.app.terminals.get(carol, id)?.outputOffset ?? 0;
    let held = false;
    for (let i = 0; i < 40 && !held; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const before = fed();
      await new Promise((r) => setTimeout(r, 1000));
      // `yes` unhindered writes megabytes a second; held back, nothing more is read.
      held = fed() - before < 64 * 1024;
    }
    expect(held, 'the server kept reading `yes` while the client read nothing').toBe(true);
    socket.resume();
    client.clearOutput();
    client.send('\x03');
    client.send('echo done-$((40+2))\r');
    // The deadline only catches a hang; how fast this is belongs to the bench (Ctrl+C → prompt).
    await client.waitForScreen('done-42', 30_000);
  }, 90_000);

  it('refuses the 11th terminal with a clear message', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await rig.create('dave'));
    const refused = await rig.app.inject({
      method: 'POST',
      url: `/api/environments/${region}/terminals`,
      headers: { origin, cookie: rig.cookie('dave'), 'content-type': 'application/json' },
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
      await rig.app.inject({
        method: 'DELETE',
        url: `/api/environments/${region}/terminals/${id}`,
        headers: { origin, cookie: rig.cookie('dave') },
      });
  });

  it('stops (does not remove) the environment after its last terminal is gone', async () => {
    const ownerId = await rig.signIn('erin');
    const { client } = await rig.shell('erin');
    const driver = rig.app.environments.driver(region);
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
    const ownerId = await rig.signIn('frank');
    const { id, client } = await rig.shell('frank');
    // A second terminal keeps the environment running so the first shell's fate can be checked.
    await rig.shell('frank');
    client.send('echo $$ > /tmp/first.pid; echo saved-pid\r');
    await client.waitForScreen(/^saved-pid$/m);
    client.close();
    await client.closed;
    const terminals: TerminalService = rig.app.terminals;
    expect(terminals.get(ownerId, id)?.state).toBe('detached');
    const probe = async () =>
      (
        await rig.app.environments
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
