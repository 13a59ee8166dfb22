/**
 * A real Cove for home tests: listening on loopback, the real Docker engine (cove/sandbox:latest),
 * real loop-mounted homes under a temp data dir, two regions, a clock that can jump ahead, and
 * users signed in with real sessions. `restart()` closes the app and builds a new one on the same
 * data dir; `destroy()` removes every container and home it made, even after a failed test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../../../server/app.js';
import { buildConfig, type Config } from '../../../../server/config.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import { LoopHomeVolumes, mountedPaths } from '../../../../sandbox/homes/home-volumes.js';
import { TerminalTestClient } from '../../../unit/server/terminals/ws-test-client.js';
// For its `app.homeLifecycle` declaration (app.ts imports the plugin only as a value).
import type {} from '../../../../server/homes/home-lifecycle.js';

export const origin = 'http://127.0.0.1:8080';
export const regionA = 'us-east-1';
export const regionB = 'eu-west-1';
export const MiB = 1024 ** 2;
export const dayMs = 86_400_000;
/** The profile's prompt ends in `$ ` (colours reset before it). */
export const prompt = /\$ $/;

export interface HomeTestUser {
  readonly id: string;
  readonly username: string;
  cookie: string;
}

export class HomeTestServer {
  app!: FastifyInstance;
  store!: SqliteStore;
  volumes!: LoopHomeVolumes;
  config!: Config;
  base = '';
  /** Added to the real time for the app and the volumes (retention tests jump ahead). */
  clockOffsetMs = 0;
  readonly users: HomeTestUser[] = [];
  readonly clients: TerminalTestClient[] = [];
  readonly dataDir: string;

  private constructor(
    private readonly raw: Record<string, unknown>,
    private readonly reserveBytes: number,
  ) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'cove-homes-it-'));
  }

  static async start(
    options: { homeSizeBytes?: number; reserveBytes?: number; config?: Record<string, unknown> } = {},
  ): Promise<HomeTestServer> {
    const server = new HomeTestServer(
      {
        logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
        regions: [
          { id: regionA, name: 'US East' },
          { id: regionB, name: 'Europe' },
        ],
        sandbox: { graceS: 5, memoryBytes: 256 * MiB },
        homes: { sizeBytes: options.homeSizeBytes ?? 96 * MiB, usageCheckIntervalS: 5 },
        ...options.config,
      },
      options.reserveBytes ?? 0,
    );
    server.store = new SqliteStore(join(server.dataDir, 'cove.db'));
    await server.boot();
    return server;
  }

  readonly now = (): number => Date.now() + this.clockOffsetMs;

  private async boot(): Promise<void> {
    this.config = buildConfig({ ...this.raw, dataDir: this.dataDir });
    this.volumes = new LoopHomeVolumes({
      root: join(this.dataDir, 'homes'),
      reserveBytes: this.reserveBytes,
      now: this.now,
    });
    this.app = await buildApp({
      config: this.config,
      store: this.store,
      now: this.now,
      homeVolumes: this.volumes,
    });
    await this.app.listen({ host: '127.0.0.1', port: 0 });
    this.base = `127.0.0.1:${(this.app.server.address() as AddressInfo).port}`;
  }

  /** Server restart: the app closes (containers keep running) and a new one starts on the same data. */
  async restart(between?: () => Promise<void>): Promise<void> {
    for (const client of this.clients.splice(0)) client.ws.terminate();
    await this.app.close();
    await between?.();
    await this.boot();
    for (const user of this.users) await this.signIn(user);
  }

  async user(name: string, options: { admin?: boolean } = {}): Promise<HomeTestUser> {
    const record = await this.store.users.create({ username: `${name}-${process.pid}-${this.users.length}` });
    if (options.admin) {
      const admins =
        (await this.store.groups.getByName('admins')) ?? (await this.store.groups.create({ name: 'admins' }));
      await this.store.groups.addMember(admins.id, record.id);
    }
    const user = { id: record.id, username: record.username, cookie: '' };
    this.users.push(user);
    await this.signIn(user);
    return user;
  }

  private async signIn(user: HomeTestUser): Promise<void> {
    const { token } = await this.app.sessions.create(user.id, 'full');
    user.cookie = `cove_session=${token}`;
  }

  request(
    user: HomeTestUser,
    method: 'GET' | 'POST' | 'DELETE' | 'PATCH',
    url: string,
    body?: unknown,
  ): Promise<LightMyRequestResponse> {
    return this.app.inject({
      method,
      url,
      headers: {
        origin,
        cookie: user.cookie,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  }

  /** Opens a terminal and waits for the prompt. */
  async shell(user: HomeTestUser, region = regionA): Promise<TerminalTestClient> {
    const created = await this.request(user, 'POST', `/api/environments/${region}/terminals`, {});
    expect(created.statusCode, created.body).toBe(201);
    const { terminalId } = created.json<{ terminalId: string }>();
    const client = await TerminalTestClient.connect(
      `ws://${this.base}/api/environments/${region}/terminals/${terminalId}/ws`,
      { origin, cookie: user.cookie },
    );
    this.clients.push(client);
    await client.waitForText(prompt, 30_000);
    return client;
  }

  /** Runs a command and resolves with what it printed between two markers. */
  async run(client: TerminalTestClient, command: string, timeoutMs = 20_000): Promise<string> {
    const tag = Math.random().toString(36).slice(2, 8);
    client.clearOutput();
    // The markers are built by the shell, so the echoed command line never matches them.
    client.send(`echo B-${tag}-$((1+1)); ${command}; echo E-${tag}-$((1+1))\r`);
    await client.waitForText(`E-${tag}-2`, timeoutMs);
    const text = client.text;
    const start = text.indexOf(`B-${tag}-2`);
    return text.slice(start + `B-${tag}-2`.length, text.indexOf(`E-${tag}-2`)).replaceAll('\r', '');
  }

  /** Removes containers, then unmounts and deletes every home; safe after any failure. */
  async destroy(): Promise<void> {
    for (const client of this.clients.splice(0)) client.ws.terminate();
    // A test may configure only one of the two regions.
    const driverOf = (region: string) => {
      try {
        return this.app?.environments.driver(region);
      } catch {
        return undefined;
      }
    };
    const driverA = driverOf(regionA);
    const driverB = driverOf(regionB);
    await this.app?.close().catch(() => undefined);
    await Promise.all(
      this.users.flatMap((u) => [
        driverA?.remove({ ownerId: u.id, region: regionA }).catch(() => undefined),
        driverB?.remove({ ownerId: u.id, region: regionB }).catch(() => undefined),
      ]),
    );
    for (const home of (await this.volumes?.list().catch(() => [])) ?? [])
      await this.volumes.delete(home).catch(() => undefined);
    await this.store?.close().catch(() => undefined);
    // Never recurse into a home that is still mounted: report it instead.
    const left = [...(await mountedPaths())].filter((p) => p.startsWith(this.dataDir));
    if (left.length > 0) throw new Error(`homes still mounted after cleanup: ${left.join(', ')}`);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
