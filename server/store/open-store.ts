/**
 * The one place that picks the store: PostgreSQL when `database.url` is set, else SQLite in the
 * data directory. The rest of the app sees only the Store contract.
 */
import { resolve } from 'node:path';
import { redactedDatabaseUrl, type Config } from '../config.js';
import { StoreError } from '../errors.js';
import { PostgresStore } from './postgres-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

export interface OpenedStore {
  readonly store: Store;
  /** Which database, fit for a log line (no password). */
  readonly description: string;
}

export async function openStore(config: Pick<Config, 'dataDir' | 'database'>): Promise<OpenedStore> {
  const { url } = config.database;
  if (url) {
    const description = `PostgreSQL ${redactedDatabaseUrl(url)}`;
    try {
      return { store: await PostgresStore.open(url), description };
    } catch (error) {
      // One line an operator can act on: which database (no password), and what to check.
      if (error instanceof StoreError && error.kind === 'unavailable')
        throw new Error(
          `its database (${description}) does not answer. Check database.url (COVE_DATABASE_URL) and that PostgreSQL runs and accepts connections from here, then start Cove again.`,
          { cause: error },
        );
      throw error;
    }
  }
  const path = resolve(config.dataDir, 'cove.db');
  return { store: new SqliteStore(path), description: `SQLite ${path}` };
}
