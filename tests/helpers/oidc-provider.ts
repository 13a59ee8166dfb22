/**
 * A real OpenID provider (panva's `oidc-provider`, the certified implementation) on a free
 * loopback port, for sign-in tests: test users with a password, a `groups` claim, and per-user
 * `amr`/`acr` to play an IdP that did (or did not) do MFA. Login is a minimal custom interaction
 * (one form: user name and password), which also grants consent, so a test drives the whole
 * code flow over HTTP or from Chromium. Claims go into the ID token (`conformIdTokenClaims:
 * false`), as Okta, Entra ID and Keycloak put groups there.
 *
 * Stops by itself when the test file ends (an `afterAll` registered at start), or with `stop()`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll } from 'vitest';
import Provider, { type Configuration } from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';
import { freeLoopbackPort } from './free-port.js';

export interface TestIdpUser {
  readonly sub: string;
  readonly password: string;
  readonly preferred_username?: string;
  readonly email?: string;
  readonly email_verified?: boolean;
  readonly groups?: readonly string[];
  /** Authentication methods the provider reports (`amr`), e.g. ['pwd', 'otp'] for MFA. */
  readonly amr?: readonly string[];
  readonly acr?: string;
}

export interface TestIdpClient {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  readonly postLogoutRedirectUris: readonly string[];
}

export interface TestIdp {
  readonly issuer: string;
  readonly users: Map<string, TestIdpUser>;
  /** Login attempts the provider's form saw, by user name (for tests that count). */
  readonly logins: string[];
  stop(): Promise<void>;
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function formBody(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid: string, clientId: string, message = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title></head><body>
<h1>Test IdP</h1><p>Sign in to continue to ${escape(clientId)}.</p>
${message ? `<p role="alert">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>User name <input name="login" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in at the IdP</button>
</form></body></html>`;
}

export async function startTestIdp(options: {
  readonly users: readonly TestIdpUser[];
  readonly client: TestIdpClient;
  /** Stop on the file's afterAll (default true). */
  readonly autoStop?: boolean;
  /** A port reserved earlier (when Cove must be configured with the issuer first). */
  readonly port?: number;
}): Promise<TestIdp> {
  const port = options.port ?? (await freeLoopbackPort());
  const issuer = `http://127.0.0.1:${port}`;
  const users = new Map(options.users.map((u) => [u.preferred_username ?? u.sub, u]));
  const bySub = () => new Map([...users.values()].map((u) => [u.sub, u]));
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'test-idp-1', alg: 'RS256', use: 'sig' };

  const configuration: Configuration = {
    clients: [
      {
        client_id: options.client.clientId,
        client_secret: options.client.clientSecret,
        redirect_uris: [...options.client.redirectUris],
        post_logout_redirect_uris: [...options.client.postLogoutRedirectUris],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      // acr/amr ride with `openid`, so the ID token says how the user authenticated.
      openid: ['sub', 'acr', 'amr'],
      profile: ['preferred_username', 'name'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'profile', 'email', 'groups'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    ttl: { Interaction: 600, Grant: 600, Session: 3600, AccessToken: 300, IdToken: 300 },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => {
          ctx.body = `<!doctype html><html><head><title>Sign out</title></head><body><h1>Sign out of the test IdP?</h1>${form}<button form="op.logoutForm" name="logout" value="yes">Sign out</button></body></html>`;
        },
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => {
      const user = bySub().get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        claims: () => {
          const { password: _password, amr: _amr, acr: _acr, ...claims } = user;
          return { ...claims, sub };
        },
      };
    },
  };
  const provider = new Provider(issuer, configuration);
  const logins: string[] = [];
  const handler = provider.callback();

  async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    const clientId = String(details.params.client_id ?? '');
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginPage(details.uid, clientId));
      return;
    }
    const form = await formBody(req);
    const login = form.get('login') ?? '';
    logins.push(login);
    const user = users.get(login);
    if (!user || user.password !== form.get('password')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginPage(details.uid, clientId, 'Wrong user name or password.'));
      return;
    }
    const grant = new provider.Grant({ accountId: user.sub, clientId });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    const grantId = await grant.save();
    await provider.interactionFinished(
      req,
      res,
      {
        login: {
          accountId: user.sub,
          amr: [...(user.amr ?? ['pwd'])],
          ...(user.acr ? { acr: user.acr } : {}),
          remember: false,
        },
        consent: { grantId },
      },
      { mergeWithLastSubmission: false },
    );
  }

  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      interaction(req, res).catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${(error as Error).message}`);
      });
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  if (options.autoStop !== false) afterAll(stop);
  return { issuer, users, logins, stop };
}
