/**
 * Terminals that survive, against the real Docker engine: shells under the cove-terminal holder
 * (cove-holder), the server's screen mirror, several sockets on one terminal, grace expiry ending
 * the holder, a server restart (a second app on the same database) re-adopting a running shell
 * with its screen and what it printed meanwhile, a flood reaching the page whole, and stale holder
 * clients not piling up.
 * Users are fresh per run; their containers are removed in afterAll.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerTerminalRig, rigRegion } from './docker-terminal-rig.js';

const region = rigRegion;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The numbers of the screen's `line-N` lines, top to bottom. */
const numberedLines = (screen: string) => [...screen.matchAll(/^line-(\d+)$/gm)].map((m) => Number(m[1]));

describe('terminals that survive (Docker)', () => {
  let rig: DockerTerminalRig;

  beforeAll(async () => {
    rig = await DockerTerminalRig.start('cove-terminal-persist', {
      graceS: 3,
      hello: { cols: 100, rows: 30 },
    });
  });

  afterAll(async () => {
    await rig?.close();
  });

  it('F07 a dropped socket reattaches to the same shell and screen, with the output printed while away', async () => {
    await rig.signIn('ana');
    const { id, client } = await rig.shell('ana');
    client.send('for i in $(seq 1 40); do echo line-$i; sleep 0.05; done; echo fin-$((40+2))\r');
    await client.waitForScreen(/^line-3$/m);
    client.ws.terminate();
    await client.closed;
    // Within the grace period (3 s here).
    await sleep(1500);
    const again = await rig.connect('ana', id);
    await again.waitForScreen(/^fin-42$/m, 10_000);
    for (const n of [1, 20, 40]) expect(again.screen).toMatch(new RegExp(`^line-${n}$`, 'm'));
    // Nothing doubled: the page got one repaint of the screen and scrollback, not a replay on top.
    expect(again.screen.match(/^line-20$/gm)).toHaveLength(1);
    again.send('echo same-$((1+1))\r');
    await again.waitForScreen(/^same-2$/m);
  });

  it('several sockets on one terminal all see its output, and input from any reaches it', async () => {
    await rig.signIn('ben');
    const { id, client: first } = await rig.shell('ben');
    const second = await rig.connect('ben', id);
    await second.waitForPrompt(10_000);
    second.send('echo from-second-$((3*3))\r');
    await first.waitForScreen(/^from-second-9$/m);
    await second.waitForScreen(/^from-second-9$/m);
    first.send('echo from-first-$((4*4))\r');
    await second.waitForScreen(/^from-first-16$/m);
    expect(first.ws.readyState).toBe(first.ws.OPEN);
  });

  it('gives each terminal its own variables: nothing leaks between terminals of one environment', async () => {
    await rig.signIn('cleo');
    const a = await rig.shell('cleo');
    const b = await rig.shell('cleo');
    a.client.send('echo "id-[$COVE_TERMINAL_ID]"\r');
    b.client.send('echo "id-[$COVE_TERMINAL_ID]"\r');
    await a.client.waitForScreen(`id-[${a.id}]`);
    await b.client.waitForScreen(`id-[${b.id}]`);
    expect(b.client.screen).not.toContain(a.id);
  });

  it('F07 ends the held shell and every process of it when the grace period expires', async () => {
    const ownerId = await rig.signIn('dan');
    const { id, client } = await rig.shell('dan');
    // A second terminal keeps the environment running so the first one's processes can be seen.
    await rig.shell('dan');
    client.send('sleep 1234 & echo bg-$((5+5))\r');
    await client.waitForScreen(/^bg-10$/m);
    expect(await rig.inContainer(ownerId, 'cove-terminal list')).toContain(id);
    expect(await rig.inContainer(ownerId, 'ps -eo args')).toContain('sleep 1234');
    client.ws.terminate();
    await client.closed;
    const deadline = Date.now() + 15_000;
    let left = 'unknown';
    while (Date.now() < deadline) {
      await sleep(500);
      left = await rig.inContainer(ownerId, 'cove-terminal list; ps -eo args | grep -c "[s]leep 1234"');
      if (!left.includes(id) && left.trim().endsWith('\n0')) break;
    }
    expect(left.includes(id)).toBe(false);
    // The other terminal's holder is still listed; no `sleep 1234` is left.
    expect(left.trim().split('\n').at(-1)).toBe('0');
    expect(rig.app.terminals.isLive(ownerId, region, id)).toBe(false);
  });

  it('F03 after a server restart the same terminal id reattaches and a job started before it finishes', async () => {
    const ownerId = await rig.signIn('eve');
    const { id, client } = await rig.shell('eve');
    // The job ends after the restart, however long that takes.
    const flag = `/tmp/go-${process.pid}`;
    client.send(`while [ ! -e ${flag} ]; do sleep 0.2; done; echo done-$((6*7))\r`);
    await sleep(300);
    await rig.stop();
    expect((await client.closed).code).toBe(1001);
    await rig.listen();
    // Sessions live in the store, so the cookie still works; the terminal was re-adopted.
    expect(rig.app.terminals.isLive(ownerId, region, id)).toBe(true);
    expect(rig.app.terminals.isLive('someone-else', region, id)).toBe(false);
    const again = await rig.connect('eve', id);
    await again.waitFor(
      () => rig.app.terminals.get(ownerId, id)?.live === true,
      'the held shell reopened',
      15_000,
    );
    await rig.inContainer(ownerId, `touch ${flag}`);
    await again.waitForScreen(/^done-42$/m, 15_000);
    again.send('echo after-$((2+3))\r');
    await again.waitForScreen(/^after-5$/m);
  });

  it('F03 what a shell prints while the server is down reaches the page after the restart: every line once, in order', async () => {
    const ownerId = await rig.signIn('jon');
    const { id, client } = await rig.shell('jon');
    client.send('for i in $(seq 1 300); do echo line-$i; sleep 0.02; done; echo fin-$((7*6))\r');
    await client.waitForScreen(/^line-20$/m);
    await rig.stop();
    expect((await client.closed).code).toBe(1001);
    const printedBefore = numberedLines(client.screen).length;
    // The job goes on printing while no server is attached.
    await sleep(2_000);
    await rig.listen();
    expect(rig.app.terminals.isLive(ownerId, region, id)).toBe(true);
    const again = await rig.connect('jon', id);
    await again.waitForScreen(/^fin-42$/m, 30_000);
    expect(printedBefore).toBeLessThan(300);
    expect(numberedLines(again.screen)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
  });

  it('F03 never adopts a held shell the store does not know, even one named like a terminal id', async () => {
    const ownerId = await rig.signIn('fay');
    await rig.shell('fay');
    const forged = 'AAAAAAAAAAAAAAAAAAAAAA';
    // Made the way a user could: a holder of their own on a socket where Cove keeps its own.
    await rig.inContainer(
      ownerId,
      `cove-holder new /tmp/cove-terminals/${forged}.sock sleep 600 </dev/null >/dev/null 2>&1; sleep 0.3`,
    );
    expect(await rig.inContainer(ownerId, 'cove-terminal list')).toContain(forged);
    await rig.stop();
    await rig.listen();
    expect(rig.app.terminals.isLive(ownerId, region, forged)).toBe(false);
    const probe = await rig.connect('fay', forged);
    expect((await probe.closed).code).toBe(4404);
  });

  it('a flood reaches the page complete: every byte of seq 1 200000, the last lines in order', async () => {
    await rig.signIn('gil');
    const { client } = await rig.shell('gil');
    const before = client.received;
    client.send('seq 1 200000; echo flood-$((1+1))\r');
    await client.waitForScreen(/^flood-2$/m, 120_000);
    let expected = 0;
    for (let i = 1; i <= 200_000; i++) expected += String(i).length + 2; // digits, \r\n
    // The echo of the command line and the prompt come on top; nothing may be missing.
    expect(client.received - before).toBeGreaterThanOrEqual(expected);
    expect(client.received - before).toBeLessThan(expected + 4096);
    const numbers = client.screen
      .split('\n')
      .filter((line) => /^\d+$/.test(line))
      .map(Number);
    expect(numbers.at(-1)).toBe(200_000);
    expect(numbers.length).toBeGreaterThan(1000);
    const tail = numbers.slice(-1000);
    expect(tail.every((n, i) => n === 200_000 - 999 + i)).toBe(true);
  });

  it('ends stale holder clients: after 3 reattaches one holder client is left, on the same shell', async () => {
    const ownerId = await rig.signIn('hal');
    await rig.shell('hal');
    const key = { ownerId, region };
    const name = `stale-${process.pid}`;
    const open = (create: boolean) =>
      rig.app.environments.openShell(key, {
        cmd: ['bash', '--norc'],
        cols: 80,
        rows: 24,
        holder: { name, create },
      });
    const pids: string[] = [];
    const readPid = async (held: Awaited<ReturnType<typeof open>>): Promise<string> => {
      let out = '';
      held.stream.on('data', (chunk: Buffer) => (out += chunk.toString()));
      held.stream.write('echo "pid=[$$]"\r');
      const deadline = Date.now() + 10_000;
      while (!/pid=\[(\d+)\]/.test(out) && Date.now() < deadline) await sleep(50);
      return /pid=\[(\d+)\]/.exec(out)?.[1] ?? 'none';
    };
    let held = await open(true);
    pids.push(await readPid(held));
    for (let i = 0; i < 3; i++) {
      // A dropped stream: Docker leaves the exec's process (the holder's client) running.
      held.stream.destroy();
      held = await open(false);
      pids.push(await readPid(held));
    }
    expect(new Set(pids).size).toBe(1);
    expect(pids[0]).toMatch(/^\d+$/);
    // Clients run on an exec's TTY; the holder itself has none (`?`).
    const clients = await rig.inContainer(
      ownerId,
      `ps -eo tty=,args= | grep -c "^pts.*cove-holder [a-z]* /tmp/cove-terminals/${name}.sock"`,
    );
    expect(clients.trim()).toBe('1');
    await held.kill();
    const left = await rig.inContainer(
      ownerId,
      `ps -eo args | grep -c "[c]ove-terminals/${name}"; cove-terminal list`,
    );
    expect(left.split('\n')[0]).toBe('0');
    expect(left).not.toContain(name);
  });

  it('F03 a graceful restart restores the exact screen and scrollback from the saved snapshot', async () => {
    const ownerId = await rig.signIn('ivy');
    const { id, client } = await rig.shell('ivy');
    client.send(
      "for i in $(seq 1 60); do printf '\\033[3%dmrow-%02d\\033[0m\\n' $((i%7)) $i; done; echo end-$((9*9))\r",
    );
    await client.waitForScreen(/^end-81$/m);
    await client.waitForPrompt();
    await sleep(300);
    const before = client.screen;
    await rig.stop();
    expect((await client.closed).code).toBe(1001);
    const screens = join(rig.dir, 'run', 'screens');
    expect(statSync(screens).mode & 0o777).toBe(0o700);
    // Every live terminal of this server is saved; this one's file is named by its id's hash.
    const file = join(screens, createHash('sha256').update(id).digest('hex'));
    expect(readdirSync(screens)).toContain(basename(file));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file).toString('latin1')).not.toContain(id);
    await rig.listen();
    // Taken at adoption and deleted, the rest too: the output lives on disk only while Cove is down.
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(screens)).toHaveLength(0);
    expect(rig.app.terminals.isLive(ownerId, region, id)).toBe(true);
    const again = await rig.connect('ivy', id);
    await again.waitFor(() => again.screen === before, 'the screen from before the restart', 10_000);
    for (const n of ['01', '30', '60']) expect(again.screen).toContain(`row-${n}`);
    again.send('echo back-$((5*5))\r');
    await again.waitForScreen(/^back-25$/m);
  });
});
