/**
 * A stand-in OpenID provider for the forged-token cases: a loopback HTTP server that speaks the
 * real protocol (discovery, JWKS, an authorization endpoint that signs the user in at once, a
 * token endpoint checking client secret, PKCE S256 and single-use codes), and lets the test
 * decide what the next ID token is: its claims, its header, the key (or no key) that signs it.
 * A real provider (tests/helpers/oidc-provider.ts) never issues a bad token, which is why this
 * exists. Tokens are made with `jose`, the library openid-client itself uses.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll } from 'vitest';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { freeLoopbackPort } from './free-port.js';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  /** SPKI PEM of the public key: what an HS256-confusion attacker uses as the HMAC secret. */
  readonly publicPem: string;
}

export interface TokenContext {
  readonly nonce: string | undefined;
  readonly clientId: string;
  readonly issuer: string;
  readonly now: number;
}

export interface StandInIdp {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Published in the JWKS. */
  readonly published: SigningKey[];
  /** Signs the default token; replaceable to rotate. */
  current: SigningKey;
  /** Claims of the next token (beyond iss/aud/iat/exp/nonce defaults); consumed by one token call. */
  nextToken: ((ctx: TokenContext) => Promise<string>) | undefined;
  /** The default user the authorization endpoint signs in. */
  claims: Record<string, unknown>;
  /** Answer the next authorization request with this `error` instead of a code. */
  nextAuthorizationError: string | undefined;
  /** Token endpoint calls: the code and whether it was accepted. */
  readonly tokenCalls: { code: string; accepted: boolean }[];
  newKey(kid: string): Promise<SigningKey>;
  /** Standard claims for the context, with overrides. */
  baseClaims(ctx: TokenContext, overrides?: Record<string, unknown>): Record<string, unknown>;
  sign(claims: Record<string, unknown>, key?: SigningKey, header?: Record<string, unknown>): Promise<string>;
  stop(): Promise<void>;
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/** An unsecured JWT (`alg: none`, empty signature). */
export function unsignedJwt(claims: Record<string, unknown>): string {
  return `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.`;
}

/** HS256 with the provider's public key (PEM) as the HMAC secret: the classic confusion attack. */
export async function hs256WithPublicKey(claims: Record<string, unknown>, key: SigningKey): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', kid: key.kid })
    .sign(new TextEncoder().encode(key.publicPem));
}

async function makeKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return {
    kid,
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
    publicPem: await exportSPKI(publicKey),
  };
}

async function body(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export async function startStandInIdp(
  options: {
    clientId?: string;
    clientSecret?: string;
    /** What discovery says the provider signs ID tokens with (default RS256 only). */
    signingAlgs?: readonly string[];
  } = {},
): Promise<StandInIdp> {
  const port = await freeLoopbackPort();
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = options.clientId ?? 'cove-stand-in';
  const clientSecret = options.clientSecret ?? randomBytes(16).toString('hex');
  const first = await makeKey('stand-in-1');
  const codes = new Map<string, { nonce?: string; challenge: string; redirectUri: string; used: boolean }>();

  const idp: StandInIdp = {
    issuer,
    clientId,
    clientSecret,
    published: [first],
    current: first,
    nextToken: undefined,
    claims: {
      sub: 'stand-in-user',
      preferred_username: 'standin',
      email: 'standin@example.com',
      email_verified: true,
    },
    nextAuthorizationError: undefined,
    tokenCalls: [],
    newKey: makeKey,
    baseClaims(ctx, overrides = {}) {
      return {
        iss: ctx.issuer,
        aud: ctx.clientId,
        iat: ctx.now,
        exp: ctx.now + 300,
        ...(ctx.nonce ? { nonce: ctx.nonce } : {}),
        ...idp.claims,
        ...overrides,
      };
    },
    async sign(claims, key = idp.current, header = {}) {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header })
        .sign(key.privateKey);
    },
    stop: async () => undefined,
  };

  const json = (res: ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(value));
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    void (async () => {
      if (url.pathname === '/.well-known/openid-configuration')
        return json(res, 200, {
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: options.signingAlgs ?? ['RS256'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['client_secret_post'],
        });
      if (url.pathname === '/jwks') return json(res, 200, { keys: idp.published.map((k) => k.publicJwk) });
      if (url.pathname === '/authorize') {
        const redirect = new URL(url.searchParams.get('redirect_uri') ?? '');
        const state = url.searchParams.get('state') ?? '';
        if (idp.nextAuthorizationError) {
          redirect.searchParams.set('error', idp.nextAuthorizationError);
          redirect.searchParams.set('state', state);
          idp.nextAuthorizationError = undefined;
        } else {
          const code = randomBytes(16).toString('base64url');
          const nonce = url.searchParams.get('nonce') ?? undefined;
          codes.set(code, {
            ...(nonce ? { nonce } : {}),
            challenge: url.searchParams.get('code_challenge') ?? '',
            redirectUri: redirect.href,
            used: false,
          });
          redirect.searchParams.set('code', code);
          redirect.searchParams.set('state', state);
        }
        res.writeHead(302, { location: redirect.href });
        return res.end();
      }
      if (url.pathname === '/token' && req.method === 'POST') {
        const form = await body(req);
        const code = form.get('code') ?? '';
        const entry = codes.get(code);
        const verifier = form.get('code_verifier') ?? '';
        const challenge = createHash('sha256').update(verifier).digest('base64url');
        const ok =
          entry !== undefined &&
          !entry.used &&
          form.get('client_id') === clientId &&
          form.get('client_secret') === clientSecret &&
          form.get('redirect_uri') === entry.redirectUri &&
          challenge === entry.challenge;
        idp.tokenCalls.push({ code, accepted: ok });
        if (!ok || !entry) return json(res, 400, { error: 'invalid_grant' });
        entry.used = true;
        const ctx: TokenContext = {
          nonce: entry.nonce,
          clientId,
          issuer,
          now: Math.floor(Date.now() / 1000),
        };
        const make = idp.nextToken;
        idp.nextToken = undefined;
        const idToken = make ? await make(ctx) : await idp.sign(idp.baseClaims(ctx));
        return json(res, 200, {
          access_token: randomBytes(16).toString('base64url'),
          token_type: 'Bearer',
          expires_in: 300,
          id_token: idToken,
        });
      }
      res.writeHead(404).end();
    })().catch((error: unknown) => {
      res.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  let stopped = false;
  idp.stop = async () => {
    if (stopped) return;
    stopped = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  afterAll(() => idp.stop());
  return idp;
}
