/**
 * The set-up the real-Docker terminal tests share: a listening Cove on loopback with a real SQLite
 * file in a temp dir (homes off), users signed in by name, terminals created through the API and
 * opened with a real `ws` client. `restart()` closes the app and builds a new one on the same
 * database, as a server restart does. `close()` removes every container of the rig's users.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../../server/app.js';
import { buildConfig } from '../../../../server/config.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import { TerminalTestClient } from '../../../unit/server/terminals/ws-test-client.js';

export const rigOrigin = 'http://127.0.0.1:8080';
export const rigRegion = 'us-east-1';

/** Extra config sections for a rig (merged over the rig's own sandbox settings). */
export interface RigConfig {
  readonly auth?: Record<string, unknown>;
  readonly sandbox?: Record<string, unknown>;
  readonly terminals?: Record<string, unknown>;
  readonly usage?: Record<string, unknown>;
}

interface Hello {
  readonly cols: number;
  readonly rows: number;
}

export class DockerTerminalRig {
  readonly cookies: Record<string, string> = {};
  readonly userIds: string[] = [];
  private readonly clients: TerminalTestClient[] = [];
  private current: FastifyInstance | undefined;
  private base = '';

  private constructor(
    readonly dir: string,
    readonly store: SqliteStore,
    private readonly graceS: number,
    private readonly hello: Hello,
    private readonly extra: RigConfig,
  ) {}

  /**
   * `prefix` names the temp dir; `graceS` is the sandbox grace period; `config` adds keys to the
   * `auth`, `sandbox`, `terminals` and `usage` sections (short timers for tests of timed behaviour).
   */
  static async start(
    prefix: string,
    options: { graceS: number; hello: Hello; config?: RigConfig },
  ): Promise<DockerTerminalRig> {
    const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    const rig = new DockerTerminalRig(
      dir,
      new SqliteStore(join(dir, 'cove.db')),
      options.graceS,
      options.hello,
      options.config ?? {},
    );
    await rig.listen();
    return rig;
  }

  get app(): FastifyInstance {
    if (!this.current) throw new Error('the rig has no running app');
    return this.current;
  }

  /** A server restart: the same database, a new app (and a new port). */
  async restart(): Promise<void> {
    await this.app.close();
    await this.listen();
  }

  async stop(): Promise<void> {
    await this.app.close();
  }

  async listen(): Promise<void> {
    const config = buildConfig({
      logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
      regions: [{ id: rigRegion, name: 'US East' }],
      dataDir: this.dir,
      homes: { enabled: false },
      sandbox: { graceS: this.graceS, memoryBytes: 256 * 1024 ** 2, ...this.extra.sandbox },
      ...(this.extra.auth ? { auth: this.extra.auth } : {}),
      ...(this.extra.terminals ? { terminals: this.extra.terminals } : {}),
      ...(this.extra.usage ? { usage: this.extra.usage } : {}),
    });
    this.current = await buildApp({ config, store: this.store });
    await this.current.listen({ host: '127.0.0.1', port: 0 });
    this.base = `127.0.0.1:${(this.current.server.address() as AddressInfo).port}`;
  }

  async signIn(name: string): Promise<string> {
    const user = await this.store.users.create({ username: `${name}-${process.pid}-${Date.now() % 100000}` });
    this.userIds.push(user.id);
    const { token } = await this.app.sessions.create(user.id, 'full');
    this.cookies[name] = `cove_session=${token}`;
    return user.id;
  }

  cookie(who: string): string {
    const cookie = this.cookies[who];
    if (!cookie) throw new Error(`${who} is not signed in`);
    return cookie;
  }

  async create(who: string): Promise<string> {
    const response = await this.app.inject({
      method: 'POST',
      url: `/api/environments/${rigRegion}/terminals`,
      headers: { origin: rigOrigin, cookie: this.cookie(who), 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(response.statusCode, response.body).toBe(201);
    return (response.json() as { terminalId: string }).terminalId;
  }

  wsUrl(id: string): string {
    return `ws://${this.base}/api/environments/${rigRegion}/terminals/${id}/ws`;
  }

  async connect(who: string, id: string, hello: Hello = this.hello): Promise<TerminalTestClient> {
    const client = await TerminalTestClient.connect(this.wsUrl(id), {
      origin: rigOrigin,
      cookie: this.cookie(who),
      hello,
    });
    this.clients.push(client);
    return client;
  }

  /** A new terminal with its prompt on screen. */
  async shell(who: string): Promise<{ id: string; client: TerminalTestClient }> {
    const id = await this.create(who);
    const client = await this.connect(who, id);
    await client.waitForPrompt(20_000);
    return { id, client };
  }

  async inContainer(ownerId: string, script: string): Promise<string> {
    const result = await this.app.environments
      .driver(rigRegion)
      .exec({ ownerId, region: rigRegion }, ['sh', '-c', script]);
    return result.stdout.toString();
  }

  /** Ends every socket, closes the app, removes the users' containers and the temp dir. */
  async close(): Promise<void> {
    for (const client of this.clients) client.ws.terminate();
    const app = this.current;
    const driver = app?.environments.driver(rigRegion);
    await app?.close();
    await Promise.all(
      this.userIds.map((ownerId) => driver?.remove({ ownerId, region: rigRegion }).catch(() => undefined)),
    );
    await this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
