/**
 * A real Cove for the attack tests that do not need containers: listening on loopback, real
 * SQLite, the seeded directory, real sessions, and the fake sandbox driver (so "no container
 * started" is observable and a case runs in milliseconds). Every log line is kept for leak checks.
 */
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { seedDirectory } from '../../server/directory/seed.js';
import { adminGroupName } from '../../server/auth/auth-plugin.js';
import { FakeSandboxDriver } from '../unit/server/environments/fake-sandbox-driver.js';
import { TerminalTestClient, type OpenOptions } from '../unit/server/terminals/ws-test-client.js';

export const origin = 'http://127.0.0.1:8080';
export const region = 'us-east-1';
export const otherRegion = 'eu-west-1';

export interface RigUser {
  readonly id: string;
  readonly username: string;
  /** Full `Cookie` header value. */
  cookie: string;
  /** The raw session token (what an attacker would try to smuggle into a URL). */
  token: string;
}

export interface SecurityRig {
  readonly t: TestApp;
  readonly driver: FakeSandboxDriver;
  /** `127.0.0.1:<port>` */
  readonly base: string;
  user(name: string, opts?: { admin?: boolean }): Promise<RigUser>;
  /** JSON request with our Origin and the user's cookie (no cookie when `user` is undefined). */
  request(
    user: RigUser | undefined,
    method: InjectOptions['method'],
    url: string,
    body?: unknown,
  ): Promise<LightMyRequestResponse>;
  createTerminal(user: RigUser, body?: Record<string, string>, inRegion?: string): Promise<string>;
  wsUrl(id: string, inRegion?: string): string;
  connect(user: RigUser, id: string, extra?: OpenOptions): Promise<TerminalTestClient>;
  /** Fails the test unless /healthz answers ok. */
  expectHealthy(): Promise<void>;
  close(): Promise<void>;
}

export async function startSecurityRig(raw: Record<string, unknown> = {}): Promise<SecurityRig> {
  const driver = new FakeSandboxDriver();
  const t = await createTestApp(
    {
      regions: [
        { id: region, name: 'US East' },
        { id: otherRegion, name: 'Europe' },
      ],
      ...raw,
      sandbox: { graceS: 30, ...((raw.sandbox as object | undefined) ?? {}) },
      homes: { enabled: false, ...((raw.homes as object | undefined) ?? {}) },
    },
    { driverFactory: () => driver },
  );
  await seedDirectory(t.app);
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const base = `127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  const clients: TerminalTestClient[] = [];
  let seq = 0;

  const rig: SecurityRig = {
    t,
    driver,
    base,
    async user(name, opts = {}) {
      const record = await t.store.users.create({ username: `${name}-${seq++}` });
      if (opts.admin) {
        const admins = await t.store.groups.getByName(adminGroupName);
        if (!admins) throw new Error('the admins group is missing');
        await t.store.groups.addMember(admins.id, record.id);
      }
      const { token } = await t.app.sessions.create(record.id, 'full');
      return {
        id: record.id,
        username: record.username,
        token,
        cookie: `${t.app.sessionCookieName}=${token}`,
      };
    },
    request(user, method, url, body) {
      return t.app.inject({
        method,
        url,
        headers: {
          origin,
          ...(user ? { cookie: user.cookie } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });
    },
    async createTerminal(user, body = {}, inRegion = region) {
      const response = await rig.request(user, 'POST', `/api/environments/${inRegion}/terminals`, body);
      expect(response.statusCode, response.body).toBe(201);
      return response.json<{ terminalId: string }>().terminalId;
    },
    wsUrl: (id, inRegion = region) => `ws://${base}/api/environments/${inRegion}/terminals/${id}/ws`,
    async connect(user, id, extra = {}) {
      const client = await TerminalTestClient.connect(rig.wsUrl(id), {
        origin,
        cookie: user.cookie,
        ...extra,
      });
      clients.push(client);
      return client;
    },
    async expectHealthy() {
      const health = await t.app.inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(200);
      expect(health.json()).toEqual({ status: 'ok' });
    },
    async close() {
      for (const client of clients) client.ws.terminate();
      await t.close();
    },
  };
  return rig;
}

/** Waits for a terminal client to be `ready` (its shell attached). */
export const ready = (client: TerminalTestClient): Promise<void> =>
  client.waitFor(() => client.events.some((e) => e.type === 'status' && e.phase === 'ready'), 'ready');
