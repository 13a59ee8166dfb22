/**
 * Two Cove instances (two apps) on one store count sign-in failures together: N wrong passwords
 * spread over both lock the account exactly as N on one would, on a shared SQLite file and on a
 * shared PostgreSQL database. No Docker: the fake sandbox driver.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hash } from '@node-rs/argon2';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../../server/app.js';
import { buildConfig } from '../../../../server/config.js';
import { PostgresStore } from '../../../../server/store/postgres-store.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import type { Store } from '../../../../server/store/store.js';
import { startPostgres, type TestPostgres } from '../../../helpers/postgres.js';
import { FakeSandboxDriver } from '../../../unit/server/environments/fake-sandbox-driver.js';

const password = 'correct horse battery staple';
const perAccount = 4;
const perIp = 6;
const baseDelayS = 30;

interface Instances {
  readonly apps: readonly FastifyInstance[];
  readonly stores: readonly Store[];
  readonly clock: { now: number };
}

let dataDir: string;
let open: Instances | undefined;

async function startInstances(openStore: () => Promise<Store>): Promise<Instances> {
  const clock = { now: 1_800_000_000_000 };
  const stores: Store[] = [];
  const apps: FastifyInstance[] = [];
  open = { apps, stores, clock };
  for (const instanceId of ['cove-a', 'cove-b']) {
    const store = await openStore();
    stores.push(store);
    const config = buildConfig(
      {
        logLevel: 'silent',
        dataDir: join(dataDir, instanceId),
        instanceId,
        homes: { enabled: false },
        auth: {
          argon2MemoryKiB: 1024,
          argon2TimeCost: 1,
          maxFailuresPerAccount: perAccount,
          maxFailuresPerIp: perIp,
          throttleBaseDelayS: baseDelayS,
        },
      },
      {},
    );
    const driver = new FakeSandboxDriver();
    const app = await buildApp({ config, store, now: () => clock.now, driverFactory: () => driver });
    apps.push(app);
    await app.ready();
  }
  const passwordHash = await hash(password, { algorithm: 2, memoryCost: 1024, timeCost: 1 });
  await stores[0]?.users.create({ username: 'victim', passwordHash });
  return open;
}

function login(
  app: FastifyInstance | undefined,
  username: string,
  pass: string,
  remoteAddress: string,
): Promise<LightMyRequestResponse> {
  if (!app) throw new Error('no such instance');
  return app.inject({
    method: 'POST',
    url: '/api/auth/login',
    remoteAddress,
    headers: { origin: app.config.publicUrl, 'content-type': 'application/json' },
    payload: JSON.stringify({ username, password: pass }),
  });
}

function sharedThrottleCases(openStore: () => Promise<Store>): void {
  it(`${perAccount} wrong passwords spread over two instances lock the account on both`, async () => {
    const { apps, clock } = await startInstances(openStore);
    const [a, b] = apps;
    // One fewer than the limit, alternating instances and addresses: the owner still gets in.
    for (let i = 0; i < perAccount - 1; i++)
      expect((await login(apps[i % 2], 'victim', `guess ${i}`, `198.51.100.${i}`)).statusCode).toBe(401);
    expect((await login(b, 'victim', password, '198.51.100.50')).statusCode).toBe(200);

    // The success cleared the account: the limit again, now concurrently over both instances.
    const statuses = await Promise.all(
      Array.from({ length: perAccount }, (_, i) =>
        login(apps[i % 2], 'victim', `guess ${i}`, `198.51.100.${10 + i}`).then((r) => r.statusCode),
      ),
    );
    expect(statuses).toEqual(Array(perAccount).fill(401));
    for (const app of [a, b]) {
      const blocked = await login(app, 'victim', password, '198.51.100.99');
      expect(blocked.statusCode).toBe(429);
      expect(blocked.json()).toMatchObject({ code: 'COVE_ERR_AUTH_THROTTLED', retryAfterS: baseDelayS });
    }
    clock.now += baseDelayS * 1000;
    expect((await login(a, 'victim', password, '198.51.100.99')).statusCode).toBe(200);
  });

  it(`${perIp} failures from one address over two instances block the address, not others`, async () => {
    const { apps } = await startInstances(openStore);
    for (let i = 0; i < perIp; i++)
      expect((await login(apps[i % 2], `nobody-${i}`, 'wrong', '203.0.113.7')).statusCode).toBe(401);
    for (const app of apps) {
      expect((await login(app, 'victim', password, '203.0.113.7')).statusCode).toBe(429);
      expect((await login(app, 'victim', password, '203.0.113.8')).statusCode).toBe(200);
    }
  });
}

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'cove-shared-throttle-'));
});
afterEach(async () => {
  for (const app of open?.apps ?? []) await app.close();
  for (const store of open?.stores ?? []) await store.close();
  open = undefined;
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('a shared SQLite file', () => {
  let n = 0;
  // Two connections on one file, as two processes on one host would have.
  sharedThrottleCases(async () => {
    const path = join(dataDir, `shared-${Math.floor(n++ / 2)}.db`);
    return new SqliteStore(path);
  });
});

describe('a shared PostgreSQL database', () => {
  let server: TestPostgres;
  let url = '';
  let n = 0;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server.dispose());
  sharedThrottleCases(async () => {
    if (n++ % 2 === 0) url = await server.createDatabase(`shared_${n}`);
    return PostgresStore.open(url, { connectTimeoutMs: 2000 });
  });
});
