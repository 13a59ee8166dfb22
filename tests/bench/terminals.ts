/**
 * Terminal holder benchmarks: what keeping shells under cove-holder costs. Prints numbers, asserts
 * nothing. Run with `node --expose-gc --import tsx tests/bench/terminals.ts` (BENCH_RUNS sets
 * the repetitions). Against the real engine and image, one in-process Cove on a temp database:
 *  - reattach: a page reconnecting to a live terminal (WebSocket open → its screen painted), and
 *    the holder itself (a new exec reattaching to the held shell → an echo comes back), the path
 *    a restarted server takes;
 *  - server memory per idle terminal (RSS after GC, 20 terminals at their prompt);
 *  - container memory per idle terminal (the cgroup's usage, and the holder's own processes);
 *  - output throughput of one command through a held shell vs a bare TTY exec in the same
 *    container, both through the same driver, so the difference is the holder's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/app.js';
import { buildConfig } from '../../server/config.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import type { Shell } from '../../sandbox/sandbox-driver.js';
import { TerminalTestClient } from '../unit/server/terminals/ws-test-client.js';

const region = 'us-east-1';
const origin = 'http://127.0.0.1:8080';
const runs = Number(process.env.BENCH_RUNS ?? 5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const fmt = (xs: number[], unit: string, digits = 1) =>
  `${median(xs).toFixed(digits)} ${unit} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}, n=${xs.length})`;
const gcRssMiB = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await sleep(100);
  }
  return process.memoryUsage().rss / 1024 ** 2;
};

export interface HolderBenchRow {
  readonly name: string;
  readonly value: string;
  readonly baseline: string;
  readonly target: string;
}

/** Waits until `stream` has shown `marker`; resolves with the bytes seen until then. */
const readUntil = (shell: Shell, marker: string, timeoutMs = 120_000): Promise<number> =>
  new Promise((resolve, reject) => {
    let tail = '';
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      tail = (tail + chunk.toString('latin1')).slice(-256);
      if (tail.includes(marker)) {
        shell.stream.off('data', onData);
        clearTimeout(timer);
        resolve(bytes);
      }
    };
    const timer = setTimeout(() => {
      shell.stream.off('data', onData);
      reject(new Error(`timed out waiting for ${marker}`));
    }, timeoutMs);
    shell.stream.on('data', onData);
  });

export async function benchHolder(): Promise<HolderBenchRow[]> {
  const rows: HolderBenchRow[] = [];
  const row = (name: string, value: string, baseline: string, target: string) => {
    rows.push({ name, value, baseline, target });
    console.log(`  ${name}: ${value} | baseline ${baseline} | target ${target}`);
  };
  const dir = mkdtempSync(join(tmpdir(), 'cove-bench-holder-'));
  const store = new SqliteStore(join(dir, 'cove.db'));
  const config = buildConfig({
    logLevel: 'warn',
    dataDir: dir,
    regions: [{ id: region, name: 'US East' }],
    homes: { enabled: false },
    sandbox: { graceS: 120, maxTerminalsPerUser: 30 },
  });
  const app: FastifyInstance = await buildApp({ config, store });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const user = await store.users.create({ username: `bench-holder-${process.pid}` });
  const { token } = await app.sessions.create(user.id, 'full');
  const cookie = `cove_session=${token}`;
  const key = { ownerId: user.id, region };
  const clients: TerminalTestClient[] = [];
  const create = async (): Promise<string> => {
    const response = await app.inject({
      method: 'POST',
      url: `/api/environments/${region}/terminals`,
      headers: { origin, cookie, 'content-type': 'application/json' },
      payload: '{}',
    });
    if (response.statusCode !== 201) throw new Error(`create failed: ${response.body}`);
    return (response.json() as { terminalId: string }).terminalId;
  };
  const connect = async (id: string) => {
    const client = await TerminalTestClient.connect(
      `ws://${base}/api/environments/${region}/terminals/${id}/ws`,
      { origin, cookie, hello: { cols: 120, rows: 40 } },
    );
    clients.push(client);
    return client;
  };
  try {
    const first = await create();
    const page = await connect(first);
    await page.waitForPrompt(60_000);
    page.send('seq 1 300; echo ready-$((2*2))\r');
    await page.waitForScreen(/^ready-4$/m, 10_000);

    // A page reconnecting within the grace period: served from the server's mirror.
    const pageReattach: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const again = await connect(first);
      await again.waitForScreen(/^ready-4$/m, 10_000);
      pageReattach.push(performance.now() - t0);
      again.ws.close();
      await again.closed;
    }
    row('page reattach (WebSocket → screen painted)', fmt(pageReattach, 'ms', 0), '-', 'p50 ≤ 300 ms');

    // The holder: a new exec reattaching to a held shell (what a restarted server does).
    const name = `bench-${process.pid}`;
    let held = await app.environments.openShell(key, {
      cmd: ['bash', '--norc'],
      cols: 120,
      rows: 40,
      holder: { name, create: true },
    });
    held.stream.write('echo start-$((1+1))\r');
    await readUntil(held, 'start-2');
    const holderReattach: number[] = [];
    for (let r = 0; r < runs; r++) {
      held.stream.destroy();
      const t0 = performance.now();
      held = await app.environments.openShell(key, {
        cmd: ['bash', '--norc'],
        cols: 120,
        rows: 40,
        holder: { name, create: false },
      });
      held.stream.write(`echo back-$((${r}+100))\r`);
      await readUntil(held, `back-${r + 100}`);
      holderReattach.push(performance.now() - t0);
    }
    row('holder reattach (exec → echo answered)', fmt(holderReattach, 'ms', 0), '-', '');

    // Throughput: the same flood through the held shell and through a bare TTY exec.
    const flood = (marker: string) => `head -c 30000000 /dev/zero | base64 -w 76; echo ${marker}-$((1+2))\r`;
    const bare = await app.environments.openShell(key, { cmd: ['bash', '--norc'], cols: 120, rows: 40 });
    bare.stream.write('echo start-$((1+1))\r');
    await readUntil(bare, 'start-2');
    const heldMbps: number[] = [];
    const bareMbps: number[] = [];
    for (let r = 0; r < runs; r++) {
      for (const [shell, out, marker] of [
        [held, heldMbps, 'held'],
        [bare, bareMbps, 'bare'],
      ] as const) {
        const t0 = performance.now();
        const done = readUntil(shell, `${marker}-3`);
        shell.stream.write(flood(marker));
        const bytes = await done;
        out.push(bytes / 1e6 / ((performance.now() - t0) / 1000));
      }
    }
    row(
      'throughput, 40 MB base64 (held shell vs bare exec)',
      fmt(heldMbps, 'MB/s'),
      fmt(bareMbps, 'MB/s'),
      `cost ≤ 20 % (measured ${(100 * (1 - median(heldMbps) / median(bareMbps))).toFixed(1)} %)`,
    );
    await held.kill();
    await bare.kill();

    // Memory per idle terminal, on the server and in the container.
    const containerBytes = async (): Promise<number> => {
      const out = await app.environments
        .driver(region)
        .exec(key, [
          'sh',
          '-c',
          'cat /sys/fs/cgroup/memory.current 2>/dev/null || cat /sys/fs/cgroup/memory/memory.usage_in_bytes',
        ]);
      return Number(out.stdout.toString().trim());
    };
    const serverBefore = await gcRssMiB();
    const containerBefore = await containerBytes();
    const count = 20;
    const idle: TerminalTestClient[] = [];
    for (let i = 0; i < count; i++) idle.push(await connect(await create()));
    await Promise.all(idle.map((c) => c.waitForPrompt(60_000)));
    await sleep(1000);
    const serverAfter = await gcRssMiB();
    const containerAfter = await containerBytes();
    const holderProcs = await app.environments.driver(region).exec(key, [
      'sh',
      '-c',
      // cove-holder + its client, the wrapper and the holder script: everything but the shell itself.
      "ps -eo rss=,args= | awk '/^ *[0-9]+ (\\/usr\\/bin\\/python3 -IS \\/usr\\/local\\/bin\\/cove-holder|\\/bin\\/sh -c echo|\\/bin\\/sh \\/usr\\/local\\/bin\\/cove-terminal)/ {s+=$1; n++} END {print s, n}'",
    ]);
    const [holderKiB, holderCount] = holderProcs.stdout.toString().trim().split(' ').map(Number);
    const terminals = count + 1;
    row(
      'server memory per idle terminal (RSS after GC, 20 terminals)',
      `${((serverAfter - serverBefore) / count).toFixed(2)} MiB`,
      '-',
      '',
    );
    row(
      'container memory per idle terminal (cgroup usage, 20 terminals)',
      `${((containerAfter - containerBefore) / count / 1024 ** 2).toFixed(2)} MiB`,
      '-',
      '',
    );
    row(
      'holder processes per terminal (cove-holder + client, wrapper, script; RSS)',
      `${((holderKiB ?? 0) / terminals / 1024).toFixed(2)} MiB in ${((holderCount ?? 0) / terminals).toFixed(1)} processes`,
      '-',
      '',
    );
  } finally {
    for (const client of clients) client.ws.terminate();
    const driver = app.environments.driver(region);
    await app.close();
    await driver.remove(key).catch(() => undefined);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`Terminal holder benchmarks (runs=${runs})`);
  benchHolder().then(
    (rows) => {
      console.table(rows);
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
