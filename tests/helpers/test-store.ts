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
import { createDatabase } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Socket directory of the run's PostgreSQL (integration-pg only). */
    postgresSocketDir?: string;
  }
}

/** The PostgreSQL URL of each store opened here (for `holdWriteLock`). */
const urls = new WeakMap<Store, string>();

export async function openTestStore(dataDir: string): Promise<Store> {
  const socketDir = inject('postgresSocketDir');
  if (!socketDir) return new SqliteStore(join(dataDir, 'cove.db'));
  const url = await createDatabase(socketDir, `cove_test_${randomBytes(6).toString('hex')}`);
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
