/**
 * A real Cove listening on a loopback port chosen first (its callback URL must be registered at
 * the provider before either starts), the test store (SQLite, or PostgreSQL in `integration-pg`:
 * tests/helpers/test-store.ts), the fake sandbox driver (no Docker), and one or more OpenID
 * providers configured. `signIn` drives the browser side of the code flow: Cove's "Sign in with"
 * link, the provider's form, the redirect back.
 */
import { createTestApp, type TestApp } from './test-app.js';
import { freeLoopbackPort } from './free-port.js';
import { formAction, type CookieJarBrowser, type Page } from './cookie-jar-browser.js';
import { FakeSandboxDriver } from '../unit/server/environments/fake-sandbox-driver.js';
import type { AuditRecord } from '../../server/store/store.js';

export interface OidcCove {
  readonly t: TestApp;
  readonly origin: string;
  readonly port: number;
  callbackUrl(providerId: string): string;
  /** Audit entries with this action, oldest first. */
  audits(action: string): Promise<AuditRecord[]>;
  close(): Promise<void>;
}

/** Picks Cove's port so callback URLs can be registered before Cove is built. */
export async function reserveCoveOrigin(): Promise<{ port: number; origin: string }> {
  const port = await freeLoopbackPort();
  return { port, origin: `http://127.0.0.1:${port}` };
}

export async function startOidcCove(
  at: { port: number; origin: string },
  providers: readonly Record<string, unknown>[],
  raw: Record<string, unknown> = {},
): Promise<OidcCove> {
  const driver = new FakeSandboxDriver();
  const rawAuth = (raw.auth as Record<string, unknown> | undefined) ?? {};
  const t = await createTestApp(
    {
      host: '127.0.0.1',
      port: at.port,
      publicUrl: at.origin,
      ...raw,
      auth: { ...rawAuth, oidc: providers },
      homes: { enabled: false },
    },
    // A JWKS cooldown of 0: a test can rotate the provider's key and sign at once.
    { driverFactory: () => driver, oidcClient: { jwksCooldownMs: 0, timeoutS: 5 } },
  );
  await t.app.listen({ host: '127.0.0.1', port: at.port });
  return {
    t,
    origin: at.origin,
    port: at.port,
    callbackUrl: (providerId) => `${at.origin}/auth/oidc/${providerId}/callback`,
    async audits(action) {
      return (await t.store.audit.list({ action, limit: 100 })).reverse();
    },
    close: () => t.close(),
  };
}

/**
 * From Cove's sign-in link through the provider (its form, or straight through when the
 * provider still has a session in this browser) to Cove's answer to the callback: a redirect
 * (`location`: where Cove sends the browser, not taken) or an error page. With
 * `stopAtCallback`, stops before Cove's callback instead (`location` is the callback URL).
 */
export async function signInWithProvider(
  browser: CookieJarBrowser,
  cove: { origin: string },
  providerId: string,
  login: { username: string; password: string },
  options: { stopAtCallback?: boolean; next?: string } = {},
): Promise<Page> {
  const start = `${cove.origin}/auth/oidc/${providerId}/login${options.next ? `?next=${encodeURIComponent(options.next)}` : ''}`;
  const callbackPrefix = `${cove.origin}/auth/oidc/${providerId}/callback`;
  const stopAt = options.stopAtCallback
    ? (next: string) => next.startsWith(callbackPrefix)
    : (next: string) => next.startsWith(cove.origin) && !next.startsWith(callbackPrefix);
  const first = await browser.navigate(start, { stopAt });
  // Stopped at a hop, or already back at Cove: the provider needed no form.
  if (first.url.startsWith(cove.origin) || (first.status >= 300 && first.location)) return first;
  if (first.status !== 200)
    throw new Error(`expected the provider's login form, got ${first.status} at ${first.url}`);
  return browser.navigate(formAction(first), {
    form: new URLSearchParams({ login: login.username, password: login.password }),
    stopAt,
  });
}

/** The session cookie Cove set in this browser (http: `cove_session`). */
export function coveSession(browser: CookieJarBrowser): string | undefined {
  return browser.cookie('127.0.0.1', 'cove_session');
}

/** GET a Cove JSON API with the browser's cookies. */
export async function coveApi<T = unknown>(
  browser: CookieJarBrowser,
  cove: { origin: string },
  path: string,
): Promise<{ status: number; body: T }> {
  const page = await browser.request(`${cove.origin}${path}`);
  return { status: page.status, body: (page.body ? JSON.parse(page.body) : undefined) as T };
}
