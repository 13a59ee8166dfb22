/**
 * What the database costs a request: sign-in (production argon2 cost), the access portal (reads
 * the directory) and an admin creating a group (a transaction with its audit entry), each as p50
 * over HTTP on a real server on 127.0.0.1, once on SQLite and once on a throwaway PostgreSQL 15
 * (tests/helpers/postgres.ts, unix socket). The same app and routes; only the store differs.
 * Run alone: npx tsx tests/bench/store.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildApp } from '../../server/app.js';
import { Argon2PasswordHasher } from '../../server/auth/password-hasher.js';
import { buildConfig } from '../../server/config.js';
import { PostgresStore } from '../../server/store/postgres-store.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import type { Store } from '../../server/store/store.js';
import { startPostgres } from '../helpers/postgres.js';

export interface StoreBenchRow {
  readonly database: 'sqlite' | 'postgres';
  readonly signInP50Ms: number;
  readonly portalP50Ms: number;
  readonly createGroupP50Ms: number;
}

const p50 = (samples: number[]): number => {
  const sorted = [...samples].sort((a, b) => a - b);
  return Number((sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(1));
};

async function measure(
  database: StoreBenchRow['database'],
  store: Store,
  dataDir: string,
): Promise<StoreBenchRow> {
  const config = buildConfig(
    { dataDir, logLevel: 'silent', port: 0, regions: [{ id: 'us-east-1', name: 'US East' }] },
    {},
  );
  const password = 'benchmark password 123';
  const hasher = new Argon2PasswordHasher(config.auth);
  const user = await store.users.create({ username: 'bench', passwordHash: await hasher.hash(password) });
  const admins = await store.groups.create({ name: 'admins' });
  await store.groups.addMember(admins.id, user.id);
  const app = await buildApp({ config, store });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const origin = config.publicUrl;
  let cookie = '';
  const call = async (method: string, path: string, body?: unknown) => {
    const started = performance.now();
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { origin, cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    await res.arrayBuffer();
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) cookie = setCookie.split(';')[0] ?? '';
    return { ms: performance.now() - started, status: res.status };
  };
  const expectOk = (result: { status: number }, what: string) => {
    if (result.status >= 300) throw new Error(`${what} answered ${result.status}`);
  };
  try {
    const signIns: number[] = [];
    for (let i = 0; i < 12; i++) {
      const result = await call('POST', '/api/auth/login', { username: 'bench', password });
      expectOk(result, 'sign-in');
      if (i >= 2) signIns.push(result.ms);
    }
    const portal: number[] = [];
    const groups: number[] = [];
    for (let i = 0; i < 60; i++) {
      const read = await call('GET', '/api/portal');
      expectOk(read, 'portal');
      const write = await call('POST', '/api/admin/groups', { name: `bench-${i}` });
      expectOk(write, 'create group');
      if (i >= 10) {
        portal.push(read.ms);
        groups.push(write.ms);
      }
    }
    return { database, signInP50Ms: p50(signIns), portalP50Ms: p50(portal), createGroupP50Ms: p50(groups) };
  } finally {
    await app.close();
  }
}

/** One row per database, each the median of `runs` runs' p50s (with min–max). */
export async function benchStore(runs = 3): Promise<Record<string, string>[]> {
  const postgres = await startPostgres();
  const rows: Record<string, string>[] = [];
  try {
    for (const database of ['sqlite', 'postgres'] as const) {
      const results: StoreBenchRow[] = [];
      for (let run = 0; run < runs; run++) {
        const dataDir = mkdtempSync(join(tmpdir(), 'cove-bench-store-'));
        const store =
          database === 'sqlite'
            ? new SqliteStore(join(dataDir, 'cove.db'))
            : await PostgresStore.open(await postgres.createDatabase(`bench_${run}_${Date.now()}`));
        try {
          results.push(await measure(database, store, dataDir));
        } finally {
          await store.close();
          rmSync(dataDir, { recursive: true, force: true });
        }
      }
      const cell = (pick: (r: StoreBenchRow) => number) => {
        const values = results.map(pick).sort((a, b) => a - b);
        return `${values[Math.floor(values.length / 2)]} ms (${values[0]}–${values[values.length - 1]})`;
      };
      rows.push({
        database,
        'sign-in p50': cell((r) => r.signInP50Ms),
        'portal p50': cell((r) => r.portalP50Ms),
        'create group p50': cell((r) => r.createGroupP50Ms),
      });
    }
  } finally {
    await postgres.dispose();
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchStore(Number(process.env.BENCH_RUNS ?? 3)));
}
