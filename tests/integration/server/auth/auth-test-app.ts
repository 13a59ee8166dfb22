/**
 * A real Cove app for the auth tests: real SQLite file in a temp dir, config built the way
 * production builds it (cheap argon2), a clock the test moves, and two extra /api routes (one
 * behind `requireUser`, one with no guard) to watch the gating from the outside.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hash } from '@node-rs/argon2';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../../../server/app.js';
import { buildConfig, type Config } from '../../../../server/config.js';
import type { Store } from '../../../../server/store/store.js';
import { openTestStore } from '../../../helpers/test-store.js';
import type { UserPatch, UserRecord } from '../../../../server/store/store.js';
import { totpCode } from '../../../../server/auth/totp.js';
// For the decorators' types (requireUser, sessionCookieName, ...).
import type {} from '../../../../server/auth/auth-plugin.js';

export const testPassword = 'correct horse battery staple';

export interface TestClock {
  now: number;
  advance(ms: number): void;
}

export interface AuthTestApp {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly config: Config;
  readonly clock: TestClock;
  readonly origin: string;
  readonly cookieName: string;
  createUser(username: string, patch?: UserPatch & { password?: string | null }): Promise<UserRecord>;
  /** POST with the right Origin and a JSON body, as the pages send it. */
  post(
    url: string,
    body?: unknown,
    cookie?: string,
    extra?: { remoteAddress?: string },
  ): Promise<LightMyRequestResponse>;
  get(url: string, cookie?: string): Promise<LightMyRequestResponse>;
  login(username: string, password?: string, cookie?: string): Promise<LightMyRequestResponse>;
  /** Signs in with the password, then the code for the current step when the user has TOTP. */
  signIn(username: string, password?: string): Promise<string>;
  /** The session cookie value a response set, or undefined. */
  cookieOf(response: LightMyRequestResponse): string | undefined;
  codeNow(secret: string): string;
  close(): Promise<void>;
}

export async function startAuthApp(raw: Record<string, unknown> = {}): Promise<AuthTestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cove-auth-'));
  const rawAuth = (raw.auth as Record<string, unknown> | undefined) ?? {};
  const config = buildConfig(
    { logLevel: 'silent', dataDir, ...raw, auth: { argon2MemoryKiB: 1024, argon2TimeCost: 1, ...rawAuth } },
    {},
  );
  const store = await openTestStore(dataDir);
  // Mid-step start, so a test's "+30 s" lands cleanly on the next TOTP step.
  const start = Math.floor(Date.now() / 30_000) * 30_000 + 10_000;
  const clock: TestClock = {
    now: start,
    advance(ms) {
      this.now += ms;
    },
  };
  const app = await buildApp({ config, store, now: () => clock.now });
  app.get('/api/test/guarded', { preHandler: app.requireUser }, async () => ({ ok: true }));
  app.get('/api/test/admin', { preHandler: app.requireAdmin }, async () => ({ ok: true }));
  app.get('/api/test/unguarded', async () => ({ ok: true }));
  await app.ready();
  const origin = config.publicUrl;
  const cookieName = app.sessionCookieName;

  const cookieHeader = (cookie?: string) =>
    cookie === undefined ? {} : { cookie: `${cookieName}=${cookie}` };
  const harness: AuthTestApp = {
    app,
    store,
    config,
    clock,
    origin,
    cookieName,
    async createUser(username, patch = {}) {
      const { password = testPassword, ...rest } = patch;
      const passwordHash =
        password === null ? null : await hash(password, { algorithm: 2, memoryCost: 1024, timeCost: 1 });
      const user = await store.users.create({ username, passwordHash });
      return (await store.users.update(user.id, rest)) as UserRecord;
    },
    post(url, body, cookie, extra = {}) {
      return app.inject({
        method: 'POST',
        url,
        headers: {
          origin,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...cookieHeader(cookie),
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
        ...extra,
      });
    },
    get(url, cookie) {
      return app.inject({ method: 'GET', url, headers: cookieHeader(cookie) });
    },
    login(username, password = testPassword, cookie) {
      return harness.post('/api/auth/login', { username, password }, cookie);
    },
    async signIn(username, password = testPassword) {
      const res = await harness.login(username, password);
      if (res.statusCode !== 200) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`);
      const cookie = harness.cookieOf(res) as string;
      if (!(res.json() as { mfaRequired: boolean }).mfaRequired) return cookie;
      const user = (await store.users.getByUsername(username)) as UserRecord;
      const mfa = await harness.post(
        '/api/auth/mfa',
        { code: harness.codeNow(user.totpSecret as string) },
        cookie,
      );
      if (mfa.statusCode !== 200) throw new Error(`MFA failed: ${mfa.statusCode} ${mfa.body}`);
      return harness.cookieOf(mfa) as string;
    },
    cookieOf(response) {
      const cookie = response.cookies.find((c) => c.name === cookieName);
      return cookie && cookie.value !== '' ? cookie.value : undefined;
    },
    codeNow(secret) {
      return totpCode(secret, clock.now);
    },
    async close() {
      await app.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}
