/**
 * The store contract (store-contract.ts) against both implementations: SQLite on a file in a temp
 * directory, PostgreSQL on a throwaway server of this file's own (tests/helpers/postgres.ts), one
 * new database per case.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe } from 'vitest';
import { PostgresStore } from '../../../../server/store/postgres-store.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import { startPostgres } from '../../../helpers/postgres.js';
import { storeContract, type StoreHarness } from './store-contract.js';

describe('SqliteStore', () => {
  storeContract(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cove-store-'));
    let path = '';
    let n = 0;
    const withDb = <T>(fn: (db: Database.Database) => T): T => {
      const db = new Database(path);
      try {
        return fn(db);
      } finally {
        db.close();
      }
    };
    const harness: StoreHarness = {
      dialect: 'sqlite',
      freshDatabase: () => {
        path = join(dir, `cove-${++n}.db`);
        return Promise.resolve();
      },
      open: () => Promise.resolve(new SqliteStore(path)),
      exec: (sql) => Promise.resolve(withDb((db) => void db.exec(sql))),
      recordVersion: (version) =>
        Promise.resolve(withDb((db) => void db.pragma(`user_version = ${version}`))),
      schemaVersion: () =>
        Promise.resolve(withDb((db) => db.pragma('user_version', { simple: true }) as number)),
      outage: (store) => {
        // Another connection holds the write lock, and the store does not wait for it: SQLITE_BUSY.
        const db = (store as unknown as { db: Database.Database }).db;
        db.pragma('busy_timeout = 0');
        const holder = new Database(path);
        holder.exec('BEGIN EXCLUSIVE');
        return Promise.resolve(() => {
          holder.exec('ROLLBACK');
          holder.close();
          db.pragma('busy_timeout = 5000');
          return Promise.resolve();
        });
      },
      dispose: () => {
        rmSync(dir, { recursive: true, force: true });
        return Promise.resolve();
      },
    };
    return harness;
  });
});

describe('PostgresStore', () => {
  storeContract(async () => {
    const server = await startPostgres();
    let url = '';
    let n = 0;
    const withClient = async <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return await fn(client);
      } finally {
        await client.end();
      }
    };
    const harness: StoreHarness = {
      dialect: 'postgres',
      freshDatabase: async () => {
        url = await server.createDatabase(`contract_${++n}`);
      },
      open: () => PostgresStore.open(url, { connectTimeoutMs: 2000 }),
      exec: (sql) => withClient(async (c) => void (await c.query(sql))),
      recordVersion: (version) =>
        withClient(async (c) => {
          await c.query(
            'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)',
          );
          await c.query("INSERT INTO schema_migrations VALUES ($1, 'recorded by the test', 0)", [version]);
        }),
      schemaVersion: () =>
        withClient(async (c) => {
          const { rows } = await c.query<{ v: number }>(
            'SELECT coalesce(max(version), 0)::int AS v FROM schema_migrations',
          );
          const { rows: count } = await c.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM schema_migrations',
          );
          // Each version recorded once: a migration that ran twice would show here.
          if (count[0]?.n !== rows[0]?.v)
            throw new Error(`schema_migrations holds ${count[0]?.n} rows for version ${rows[0]?.v}`);
          return rows[0]?.v ?? 0;
        }),
      outage: async () => {
        await server.stop();
        return () => server.start();
      },
      dispose: () => server.dispose(),
    };
    return harness;
  });
});
