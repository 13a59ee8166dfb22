/**
 * SECURITY-TESTS F08: the server's data directory (SQLite, home images, credential sockets, the
 * embedded S3) on its own small loop-mounted ext4, filled up from the host while a user has a
 * shell open. A new home is refused with 507, the open shell keeps echoing, a user with a home
 * opens another tab (recording the home's last use is best effort), a database write is a 503
 * that says the disk is full, the server answers and does not crash, SQLite passes `PRAGMA
 * integrity_check`, and after space is freed a new user gets a working shell. Real Docker, real
 * loop mounts; everything is unmounted in afterAll. The engine's own disk: engine-disk-full.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/app.js';
import { buildConfig } from '../../server/config.js';
import { Argon2PasswordHasher } from '../../server/auth/password-hasher.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LoopHomeVolumes, mountedPaths } from '../../sandbox/homes/home-volumes.js';
import { TerminalTestClient } from '../unit/server/terminals/ws-test-client.js';

const run = promisify(execFile);
const origin = 'http://127.0.0.1:8080';
const region = 'us-east-1';
const MiB = 1024 ** 2;

describe('F08 host disk full under the data directory (real Docker, loop-mounted data dir)', () => {
  let root: string;
  let dataDir: string;
  let mounted = false;
  let store: SqliteStore;
  let volumes: LoopHomeVolumes;
  let app: FastifyInstance;
  let base: string;
  let config: ReturnType<typeof buildConfig>;
  const users: { id: string; cookie: string }[] = [];
  const clients: TerminalTestClient[] = [];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'cove-f08-'));
    const image = join(root, 'data.img');
    dataDir = join(root, 'data');
    mkdirSync(dataDir);
    // Room for one 64 MiB (sparse) home and the server's own files, not much more.
    await run('truncate', ['-s', String(192 * MiB), image]);
    await run('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
    await run('mount', ['-o', 'loop,nodev,nosuid', image, dataDir]);
    mounted = true;
    store = new SqliteStore(join(dataDir, 'cove.db'));
    volumes = new LoopHomeVolumes({ root: join(dataDir, 'homes'), reserveBytes: 0 });
    config = buildConfig({
      logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
      dataDir,
      regions: [{ id: region, name: 'US East' }],
      sandbox: { graceS: 5, memoryBytes: 256 * MiB },
      homes: { sizeBytes: 64 * MiB, reserveBytes: 0 },
    });
    app = await buildApp({ config, store, homeVolumes: volumes });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    const driver = app?.environments.driver(region);
    await app?.close().catch(() => undefined);
    // A container still up holds the home and socket binds (the data fs stays busy): retry while
    // the engine is away (another suite may be restarting it).
    for (let attempt = 0; attempt < 30; attempt++) {
      const left = await Promise.all(
        users.map((u) =>
          driver?.remove({ ownerId: u.id, region }).then(
            () => false,
            () => true,
          ),
        ),
      );
      if (!left.includes(true)) break;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    for (const home of (await volumes?.list().catch(() => [])) ?? [])
      await volumes.delete(home).catch(() => undefined);
    await store?.close().catch(() => undefined);
    if (mounted) {
      const inside = [...(await mountedPaths())].filter((p) => p.startsWith(`${dataDir}/`));
      for (const path of inside.sort().reverse()) await run('umount', [path]).catch(() => undefined);
      await run('umount', [dataDir]).catch(async (error: unknown) => {
        // Detach it anyway so nothing stays mounted under /tmp, and still fail the run.
        await run('umount', ['-l', dataDir]);
        throw error;
      });
    }
    // Never recurse into anything still mounted.
    if ([...(await mountedPaths())].some((p) => p.startsWith(root)))
      throw new Error(`still mounted under ${root}`);
    rmSync(root, { recursive: true, force: true });
  });

  const user = async (name: string) => {
    const record = await store.users.create({ username: `${name}-${process.pid}` });
    const { token } = await app.sessions.create(record.id, 'full');
    const u = { id: record.id, cookie: `${app.sessionCookieName}=${token}` };
    users.push(u);
    return u;
  };
  const createTerminal = (u: { cookie: string }) =>
    app.inject({
      method: 'POST',
      url: `/api/environments/${region}/terminals`,
      headers: { origin, cookie: u.cookie, 'content-type': 'application/json' },
      payload: '{}',
    });
  const shell = async (u: { cookie: string }) => {
    const created = await createTerminal(u);
    expect(created.statusCode, created.body).toBe(201);
    const { terminalId } = created.json<{ terminalId: string }>();
    const client = await TerminalTestClient.connect(
      `ws://${base}/api/environments/${region}/terminals/${terminalId}/ws`,
      { origin, cookie: u.cookie },
    );
    clients.push(client);
    await client.waitForPrompt(30_000);
    return client;
  };
  const echo = async (client: TerminalTestClient, tag: string) => {
    client.send(`echo ${tag}-$((40+2))\r`);
    await client.waitForScreen(`${tag}-42`, 20_000);
  };
  const freeBytes = async () => {
    const { stdout } = await run('df', ['-B1', '--output=avail', dataDir]);
    return Number(stdout.trim().split('\n').at(-1));
  };

  it('F08 a full data filesystem: new homes get 507, the open shell keeps echoing, SQLite stays intact, and freeing space brings service back', async () => {
    const alice = await user('alice');
    // Bob exists before the disk fills (a user record is a database write like any other).
    const bob = await user('bob');
    // Carol signs in while the disk is full: a sign-in writes (last sign-in time, session).
    const password = 'full-disk-password-1';
    await store.users.create({
      username: `carol-${process.pid}`,
      passwordHash: await new Argon2PasswordHasher(config.auth).hash(password),
    });
    const aliceShell = await shell(alice);
    await echo(aliceShell, 'before-full');

    // Fill what is left from the host side, as another process on the machine would.
    const filler = join(dataDir, 'filler');
    await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'status=none']).catch(() => undefined);
    // The last blocks too, so SQLite's next page has nowhere to go.
    await run('dd', ['if=/dev/zero', `of=${filler}-tail`, 'bs=4k', 'status=none']).catch(() => undefined);
    const free = await freeBytes();
    console.info(`F08: ${(free / MiB).toFixed(2)} MiB left on the data filesystem after the fill`);
    expect(free).toBeLessThan(64 * 1024);

    // A new user's home cannot be made: a clear, coded capacity error, and nothing half-made.
    const refused = await createTerminal(bob);
    expect(refused.statusCode).toBe(507);
    expect(refused.json()).toEqual({
      code: 'COVE_ERR_HOME_CAPACITY',
      message: 'The server is out of space for new homes; ask your administrator.',
    });
    expect(await volumes.exists({ ownerId: bob.id, region })).toBe(false);
    expect(app.terminals.list(bob.id)).toEqual([]);

    // The open shell lives on (its home is already there; /tmp is a tmpfs in the container).
    await echo(aliceShell, 'while-full');

    // Writes to SQLite while the disk is full: each either works or gets a coded error, no crash.
    const writes = await Promise.all(
      Array.from({ length: 20 }, () =>
        app.sessions.create(alice.id, 'full').then(
          () => 'ok',
          (error: unknown) => {
            const coded = error as { code?: string; cause?: { code?: string } };
            return `${coded.code}/${coded.cause?.code}`;
          },
        ),
      ),
    );
    console.info(`F08: session writes while full: ${JSON.stringify([...new Set(writes)])}`);
    // A full disk is said as such (503, the database itself is fine), never "cannot reach it".
    expect(writes.every((w) => w === 'ok' || w === 'COVE_ERR_STORE_DISK_FULL/SQLITE_FULL')).toBe(true);
    expect(writes).toContain('COVE_ERR_STORE_DISK_FULL/SQLITE_FULL');
    const signIn = await app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { origin, 'content-type': 'application/json' },
      payload: JSON.stringify({ username: `carol-${process.pid}`, password }),
    });
    expect(signIn.statusCode).toBe(503);
    expect(signIn.json()).toEqual({
      code: 'COVE_ERR_STORE_DISK_FULL',
      message:
        "Cove's server is out of disk space, so it cannot save changes right now; nothing was changed. Open terminals keep working. Try again later, and tell your administrator if it keeps happening.",
    });
    expect(signIn.headers['set-cookie']).toBeUndefined();
    // Alice has a home and a running environment: another tab opens although the home's last-use
    // time cannot be written (best effort, logged) and the tab's record may not be saved either.
    const another = await createTerminal(alice);
    expect(another.statusCode, another.body).toBe(201);
    const { terminalId } = another.json<{ terminalId: string }>();
    const second = await TerminalTestClient.connect(
      `ws://${base}/api/environments/${region}/terminals/${terminalId}/ws`,
      { origin, cookie: alice.cookie },
    );
    clients.push(second);
    await second.waitForPrompt(30_000);
    await echo(second, 'second-while-full');
    second.close();
    for (const body of [another.body, signIn.body, refused.body])
      expect(body).not.toMatch(/SQLITE|ENOSPC|at .+\.(js|ts):\d+|\/tmp\/|cove-f08/);
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    await echo(aliceShell, 'after-writes');

    // The database is intact while still full, read by a separate connection.
    const check = new Database(join(dataDir, 'cove.db'), { readonly: true });
    try {
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
      // Alice, Bob and Carol; nothing else half-written.
      expect(check.prepare('SELECT count(*) AS n FROM users').get()).toEqual({ n: 3 });
    } finally {
      check.close();
    }

    // Space back: the same request now works, end to end.
    await rm(filler);
    await rm(`${filler}-tail`);
    expect(await freeBytes()).toBeGreaterThan(100 * MiB);
    const signInAgain = await app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { origin, 'content-type': 'application/json' },
      payload: JSON.stringify({ username: `carol-${process.pid}`, password }),
    });
    expect(signInAgain.statusCode, signInAgain.body).toBe(200);
    expect(signInAgain.headers['set-cookie']).toBeDefined();
    const bobShell = await shell(bob);
    await echo(bobShell, 'bob-after');
    await echo(aliceShell, 'alice-after');
    expect(await volumes.exists({ ownerId: bob.id, region })).toBe(true);
    bobShell.close();
    aliceShell.close();
  });
});
