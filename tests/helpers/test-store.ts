/**
 * The store a test app gets: SQLite in the test's data directory, or — in the `integration-pg`
 * project, whose global set-up starts a throwaway PostgreSQL (tests/setup/postgres-global.ts) — a
 * fresh PostgreSQL database of its own. So the same app tests run on both implementations.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { inject } from 'vitest';
import { PostgresStore } from '../../server/store/postgres-store.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import type { Store } from '../../server/store/store.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the maintenance database of the run's PostgreSQL (integration-pg only). */
    postgresAdminUrl?: string;
  }
}

/** Which implementation this project's tests run on. */
export const testDatabase = (): 'postgres' | 'sqlite' => (inject('postgresAdminUrl') ? 'postgres' : 'sqlite');

/** The PostgreSQL URL of each store opened here (for `holdWriteLock`). */
const urls = new WeakMap<Store, string>();

export async function openTestStore(dataDir: string): Promise<Store> {
  const adminUrl = inject('postgresAdminUrl');
  if (!adminUrl) return new SqliteStore(join(dataDir, 'cove.db'));
  const name = `cove_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name} STRATEGY = FILE_COPY`);
  } finally {
    await client.end();
  }
  // A socket URL (`postgres://user@/db?host=/dir`) has no host for WHATWG URL: swap the name as text.
  const url = adminUrl.replace(/@\/[^?]*/, `@/${name}`);
  const store = await PostgresStore.open(url);
  urls.set(store, url);
  return store;
}

/**
 * Another process holds the database's write lock (SQLite: an IMMEDIATE transaction on the file;
 * PostgreSQL: every table locked against writes) until the returned release is called.
 */
export async function holdWriteLock(dataDir: string, store: Store): Promise<() => Promise<void>> {
  const url = urls.get(store);
  if (url === undefined) {
    const other = new Database(join(dataDir, 'cove.db'), { timeout: 0 });
    other.exec('BEGIN IMMEDIATE');
    return () => {
      other.exec('ROLLBACK');
      other.close();
      return Promise.resolve();
    };
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  const { rows } = await client.query<{ name: string }>(
    "SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public'",
  );
  await client.query(`LOCK TABLE ${rows.map((r) => r.name).join(', ')} IN EXCLUSIVE MODE`);
  return async () => {
    await client.query('ROLLBACK');
    await client.end();
  };
}
