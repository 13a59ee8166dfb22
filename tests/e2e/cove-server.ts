/**
 * A real Cove for browser tests: `buildApp` with a real SQLite file in a temp dir, listening on
 * 127.0.0.1 with `publicUrl` set to that exact origin (the CSRF check compares it), serving the
 * Vite build from dist/web. Plus a Chromium launcher with the flags this machine needs.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { freeLoopbackPort } from '../helpers/free-port.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import type { Browser, BrowserContext } from 'playwright-core';
export { launchChromium } from '../helpers/chromium.js';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppDependencies } from '../../server/app.js';
import { bootstrap } from '../../server/bootstrap.js';
import { buildConfig, type Config } from '../../server/config.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';

export const webRoot = resolve(import.meta.dirname, '../../dist/web');
export const adminPassword = 'admin-e2e-password-1';

export interface CoveServer {
  /** The current app (a new one after `restart`). */
  readonly app: FastifyInstance;
  readonly store: SqliteStore;
  readonly config: Config;
  /** e.g. http://127.0.0.1:41234 */
  readonly origin: string;
  readonly logs: string[];
  close(): Promise<void>;
  /**
   * A graceful restart, as after SIGTERM: the app closes (pages get 1001), `downMs` passes, then a
   * new app starts on the same data dir, database and port.
   */
  restart(downMs: number): Promise<void>;
}

export async function startCove(
  raw: Record<string, unknown> = {},
  /** Extra dependencies, e.g. loop-mounted homes (made from the data dir once it exists). */
  extra: (dataDir: string) => Partial<Omit<AppDependencies, 'config' | 'store'>> = () => ({}),
): Promise<CoveServer> {
  if (!existsSync(join(webRoot, 'login.html'))) {
    throw new Error(`The pages are not built (${webRoot} is missing). Run \`npx vite build\` first.`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'cove-e2e-'));
  const port = await freeLoopbackPort();
  const origin = `http://127.0.0.1:${port}`;
  const config = buildConfig({
    host: '127.0.0.1',
    port,
    publicUrl: origin,
    dataDir,
    logLevel: 'info',
    regions: [
      { id: 'eu-west-1', name: 'Europe (Ireland)' },
      { id: 'us-east-1', name: 'US East (N. Virginia)' },
    ],
    defaultRegion: 'eu-west-1',
    ...raw,
    auth: { argon2MemoryKiB: 1024, argon2TimeCost: 1, ...((raw.auth as object | undefined) ?? {}) },
  });
  let store = new SqliteStore(join(dataDir, 'cove.db'));
  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString());
      callback();
    },
  });
  let app = await buildApp({ config, store, logStream, webRoot, ...extra(dataDir) });
  await bootstrap(app, { adminPassword });
  await app.listen({ host: '127.0.0.1', port });
  return {
    get app() {
      return app;
    },
    get store() {
      return store;
    },
    config,
    origin,
    logs,
    async close() {
      await app.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
    async restart(downMs) {
      await app.close();
      await store.close();
      await new Promise((resolveWait) => setTimeout(resolveWait, downMs));
      store = new SqliteStore(join(dataDir, 'cove.db'));
      app = await buildApp({ config, store, logStream, webRoot, ...extra(dataDir) });
      await app.listen({ host: '127.0.0.1', port });
    },
  };
}

export const desktop = { width: 1280, height: 860 };
export const phone = { width: 390, height: 844 };

/**
 * A browser context already signed in as a new user (session made directly, not through the
 * login page): for tests about what comes after sign-in.
 */
export async function signedInContext(
  cove: CoveServer,
  browser: Browser,
  username: string,
  viewport = { width: 1200, height: 800 },
): Promise<{ userId: string; context: BrowserContext }> {
  const user = await cove.store.users.create({ username });
  const { token } = await cove.app.sessions.create(user.id, 'full');
  const context = await browser.newContext({ viewport });
  await context.addCookies([
    { name: 'cove_session', value: token, url: cove.origin, httpOnly: true, sameSite: 'Lax' },
  ]);
  return { userId: user.id, context };
}
