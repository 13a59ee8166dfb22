/**
 * Builds a real app (real SQLite file in a temp dir) for tests, with a config built the same way
 * production builds it. Closes everything on dispose.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppDependencies } from '../../server/app.js';
import { buildConfig, type Config } from '../../server/config.js';
import type { Store } from '../../server/store/store.js';
import { openTestStore } from './test-store.js';

export interface TestApp {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly config: Config;
  readonly dataDir: string;
  /** Everything the server logged, for leak checks. */
  readonly logs: string[];
  close(): Promise<void>;
}

export async function createTestApp(
  raw: Record<string, unknown> = {},
  extra: Partial<Omit<AppDependencies, 'config' | 'store'>> = {},
  /** Adds test-only routes before the app is sealed. */
  configure?: (app: FastifyInstance) => void | Promise<void>,
): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cove-test-'));
  const config = buildConfig({
    logLevel: 'info',
    dataDir,
    ...raw,
    auth: { argon2MemoryKiB: 1024, argon2TimeCost: 1, ...((raw.auth as object | undefined) ?? {}) },
  });
  const store = await openTestStore(dataDir);
  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString());
      callback();
    },
  });
  const app = await buildApp({ config, store, logStream, ...extra });
  await configure?.(app);
  await app.ready();
  return {
    app,
    store,
    config,
    dataDir,
    logs,
    async close() {
      await app.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
