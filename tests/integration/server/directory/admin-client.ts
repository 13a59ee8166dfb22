/**
 * Test client for the admin and portal API: a real app on a real SQLite file, users made through
 * the store, sessions made through `app.sessions` (independent of the sign-in routes), and
 * requests that carry the session cookie and the same-origin header the CSRF hook requires.
 */
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp } from '../../../helpers/test-app.js';
import { seedDirectory } from '../../../../server/directory/seed.js';
import { adminGroupName } from '../../../../server/auth/auth-plugin.js';

export const origin = 'http://127.0.0.1:8080';

export interface AdminTestContext {
  readonly t: TestApp;
  /** Cookie header of a signed-in administrator (user `root`). */
  readonly adminCookie: string;
  readonly adminId: string;
  close(): Promise<void>;
}

export async function startAdminApp(raw: Record<string, unknown> = {}): Promise<AdminTestContext> {
  const t = await createTestApp(raw);
  await seedDirectory(t.app);
  const admin = await createUser(t, 'root', { admin: true });
  return { t, adminCookie: await signIn(t, admin), adminId: admin, close: () => t.close() };
}

export async function createUser(
  t: TestApp,
  username: string,
  opts: { admin?: boolean; disabled?: boolean } = {},
): Promise<string> {
  const user = await t.store.users.create({ username });
  if (opts.disabled) await t.store.users.update(user.id, { disabled: true });
  if (opts.admin) {
    const admins = await t.store.groups.getByName(adminGroupName);
    if (!admins) throw new Error('the admins group is missing: seed first');
    await t.store.groups.addMember(admins.id, user.id);
  }
  return user.id;
}

export async function signIn(t: TestApp, userId: string): Promise<string> {
  const { token } = await t.app.sessions.create(userId, 'full');
  return `${t.app.sessionCookieName}=${token}`;
}

export interface CallOptions {
  readonly cookie?: string | undefined;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/** JSON call with Origin and cookie set. `cookie: undefined` explicitly sends none. */
export function call(
  t: TestApp,
  method: InjectOptions['method'],
  url: string,
  opts: CallOptions & { defaultCookie?: string } = {},
): Promise<LightMyRequestResponse> {
  const cookie = 'cookie' in opts ? opts.cookie : opts.defaultCookie;
  const headers: Record<string, string> = { origin, ...(cookie ? { cookie } : {}), ...opts.headers };
  if (opts.body === undefined) return t.app.inject({ method, url, headers });
  if (typeof opts.body === 'string')
    return t.app.inject({
      method,
      url,
      headers: { 'content-type': 'text/csv', ...headers },
      payload: opts.body,
    });
  return t.app.inject({ method, url, headers, payload: opts.body as Record<string, unknown> });
}

/** Binds `call` to the admin's cookie. */
export function adminCaller(ctx: AdminTestContext) {
  return (method: InjectOptions['method'], url: string, opts: CallOptions = {}) =>
    call(ctx.t, method, url, { defaultCookie: ctx.adminCookie, ...opts });
}
