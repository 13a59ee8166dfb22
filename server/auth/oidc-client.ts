/**
 * Cove as the relying party of one OpenID provider: discovery, the authorization URL (state,
 * nonce, PKCE S256), the code exchange and ID token checks, and the provider's logout URL.
 *
 * openid-client checks the authorization response (state, `iss`) and the ID token's claims
 * (iss, aud, azp, exp, nonce, alg against the provider's metadata). It does not verify the
 * signature of an ID token that came straight from the token endpoint (OIDC Core 3.1.3.7 lets
 * it lean on TLS), so Cove verifies it too, with jose against the provider's JWKS: an unsigned
 * or HMAC-signed token, or one signed by a key the provider does not publish, is refused. The
 * JWKS is fetched again when a token names a key Cove has not seen, so a provider's key
 * rotation needs no restart. `iat` in the future (beyond the tolerance) is refused here as well.
 */
import * as client from 'openid-client';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { isLoopbackHost } from '../config.js';
import type { OidcProviderConfig } from './oidc-claims.js';

/** Why a sign-in failed at the protocol level; the slug goes to the audit log. */
export type OidcFailureReason =
  | 'provider_unavailable'
  | 'idp_error'
  | 'state_mismatch'
  | 'code_rejected'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'wrong_azp'
  | 'wrong_nonce'
  | 'expired'
  | 'issued_in_future'
  | 'bad_algorithm'
  | 'bad_signature'
  | 'unknown_key'
  | 'invalid_response';

export class OidcFailure extends Error {
  constructor(
    readonly reason: OidcFailureReason,
    /** Safe to log: no tokens, no secrets. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`OIDC sign-in failed: ${reason} (${detail})`, options);
    this.name = 'OidcFailure';
  }
}

export interface RedeemedTokens {
  readonly claims: Readonly<Record<string, unknown>>;
  readonly idToken: string;
}

export interface OidcClientOptions {
  /** Cove's public origin; the callback is `<publicUrl>/auth/oidc/<id>/callback`. */
  readonly publicUrl: string;
  readonly clockToleranceS: number;
  /** Seconds before a request to the provider gives up. */
  readonly timeoutS?: number;
  /** Least time between two JWKS fetches for an unknown key (jose's cooldown). */
  readonly jwksCooldownMs?: number;
}

/** Asymmetric algorithms only: an `HS256` token "signed" with the public key must never pass. */
const signatureAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

interface Discovered {
  readonly configuration: client.Configuration;
  readonly jwks: ReturnType<typeof createRemoteJWKSet>;
}

export class OidcClient {
  private discovered: Promise<Discovered> | undefined;
  readonly redirectUri: string;

  constructor(
    readonly provider: OidcProviderConfig,
    private readonly options: OidcClientOptions,
  ) {
    this.redirectUri = `${options.publicUrl}/auth/oidc/${provider.id}/callback`;
  }

  /** Discovery once; a failure is not cached, so the next sign-in tries again. */
  private discover(): Promise<Discovered> {
    this.discovered ??= this.runDiscovery().catch((error: unknown) => {
      this.discovered = undefined;
      throw error;
    });
    return this.discovered;
  }

  private async runDiscovery(): Promise<Discovered> {
    const { provider } = this;
    const issuer = new URL(provider.issuer);
    const insecure = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname);
    let configuration: client.Configuration;
    try {
      const metadata: Partial<client.ClientMetadata> = {
        [client.clockTolerance]: this.options.clockToleranceS,
      };
      if (provider.clientSecret) metadata.client_secret = provider.clientSecret;
      configuration = await client.discovery(
        issuer,
        provider.clientId,
        metadata,
        provider.clientSecret ? undefined : client.None(),
        { ...(insecure ? { execute: [client.allowInsecureRequests] } : {}), timeout: this.timeoutS },
      );
    } catch (error) {
      throw new OidcFailure('provider_unavailable', `discovery at ${provider.issuer} failed`, {
        cause: error,
      });
    }
    configuration.timeout = this.timeoutS;
    const jwksUri = configuration.serverMetadata().jwks_uri;
    if (!jwksUri) throw new OidcFailure('provider_unavailable', 'the discovery document has no jwks_uri');
    const jwks = createRemoteJWKSet(new URL(jwksUri), {
      cooldownDuration: this.options.jwksCooldownMs ?? 5_000,
      timeoutDuration: this.timeoutS * 1000,
    });
    return { configuration, jwks };
  }

  /** Runs discovery afresh, bypassing the cache (the admin console's Test button). */
  async check(): Promise<{ issuer: string; endpoints: string[] }> {
    const { configuration } = await this.runDiscovery();
    const metadata = configuration.serverMetadata();
    const endpoints = [
      metadata.authorization_endpoint,
      metadata.token_endpoint,
      metadata.jwks_uri,
      metadata.end_session_endpoint,
    ].filter((e): e is string => typeof e === 'string');
    return { issuer: metadata.issuer, endpoints };
  }

  private get timeoutS(): number {
    return this.options.timeoutS ?? 10;
  }

  async authorizationUrl(checks: { state: string; nonce: string; codeVerifier: string }): Promise<URL> {
    const { configuration } = await this.discover();
    return client.buildAuthorizationUrl(configuration, {
      redirect_uri: this.redirectUri,
      scope: this.provider.scopes.join(' '),
      response_type: 'code',
      state: checks.state,
      nonce: checks.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
    });
  }

  /** Exchanges the code from the callback's query string and checks the ID token. */
  async redeem(
    query: URLSearchParams,
    checks: { state: string; nonce: string; codeVerifier: string },
  ): Promise<RedeemedTokens> {
    const { configuration, jwks } = await this.discover();
    const callback = new URL(this.redirectUri);
    callback.search = query.toString();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(configuration, callback, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      throw classify(error);
    }
    const idToken = tokens.id_token;
    if (!idToken) throw new OidcFailure('invalid_response', 'the token response has no id_token');
    const claims = await this.verifySignature(idToken, jwks, configuration.serverMetadata().issuer);
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.iat === 'number' && claims.iat > now + this.options.clockToleranceS)
      throw new OidcFailure('issued_in_future', `iat is ${claims.iat - now} s ahead of Cove's clock`);
    return { claims, idToken };
  }

  private async verifySignature(
    idToken: string,
    jwks: ReturnType<typeof createRemoteJWKSet>,
    issuer: string,
  ): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(idToken, jwks, {
        algorithms: signatureAlgorithms,
        issuer,
        audience: this.provider.clientId,
        clockTolerance: this.options.clockToleranceS,
      });
      return payload;
    } catch (error) {
      if (error instanceof joseErrors.JOSEAlgNotAllowed)
        throw new OidcFailure('bad_algorithm', 'the ID token is not signed with an asymmetric key', {
          cause: error,
        });
      if (error instanceof joseErrors.JWKSNoMatchingKey)
        throw new OidcFailure('unknown_key', 'no key of the provider matches the ID token', { cause: error });
      if (error instanceof joseErrors.JWSSignatureVerificationFailed)
        throw new OidcFailure('bad_signature', 'the ID token signature does not verify', { cause: error });
      if (error instanceof joseErrors.JWTExpired)
        throw new OidcFailure('expired', 'the ID token has expired', { cause: error });
      if (error instanceof joseErrors.JWKSTimeout || !(error instanceof joseErrors.JOSEError))
        throw new OidcFailure('provider_unavailable', 'the provider JWKS could not be read', {
          cause: error,
        });
      throw new OidcFailure('invalid_response', (error as Error).message, { cause: error });
    }
  }

  /** The provider's logout URL when its discovery offers one (RP-initiated logout). */
  async endSessionUrl(idToken: string | null, postLogoutRedirectUri: string): Promise<URL | undefined> {
    let configuration: client.Configuration;
    try {
      ({ configuration } = await this.discover());
    } catch {
      return undefined;
    }
    if (!configuration.serverMetadata().end_session_endpoint) return undefined;
    return client.buildEndSessionUrl(configuration, {
      post_logout_redirect_uri: postLogoutRedirectUri,
      client_id: this.provider.clientId,
      ...(idToken ? { id_token_hint: idToken } : {}),
    });
  }
}

/** Finds a `claim` (oauth4webapi's comparison errors name it) anywhere in the cause chain. */
function claimOf(error: unknown): string | undefined {
  for (let node = error, depth = 0; node && depth < 5; depth++) {
    const claim = (node as { claim?: unknown }).claim;
    if (typeof claim === 'string') return claim;
    node = (node as { cause?: unknown }).cause;
  }
  return undefined;
}

function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (let node = error, depth = 0; node && depth < 5; depth++) {
    const code = (node as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    node = (node as { cause?: unknown }).cause;
  }
  return codes;
}

function messagesOf(error: unknown): string {
  const parts: string[] = [];
  for (let node = error, depth = 0; node && depth < 5; depth++) {
    if (node instanceof Error) parts.push(node.message);
    node = (node as { cause?: unknown }).cause;
  }
  return parts.join(': ');
}

/** Maps what openid-client threw to a reason an administrator can act on. */
export function classify(error: unknown): OidcFailure {
  if (error instanceof OidcFailure) return error;
  if (error instanceof client.AuthorizationResponseError)
    return new OidcFailure('idp_error', `the provider answered ${error.error}`, { cause: error });
  if (error instanceof client.ResponseBodyError)
    return new OidcFailure('code_rejected', `the token endpoint answered ${error.error}`, { cause: error });
  const codes = codesOf(error);
  const messages = messagesOf(error);
  const claim = claimOf(error);
  if (codes.includes('OAUTH_JWT_CLAIM_COMPARISON_FAILED')) {
    if (claim === 'iss') return new OidcFailure('wrong_issuer', 'the ID token is from another issuer');
    if (claim === 'aud') return new OidcFailure('wrong_audience', 'the ID token is for another client');
    if (claim === 'azp') return new OidcFailure('wrong_azp', 'the ID token names another authorized party');
    if (claim === 'nonce') return new OidcFailure('wrong_nonce', 'the ID token carries another nonce');
  }
  if (codes.includes('OAUTH_JWT_TIMESTAMP_CHECK_FAILED'))
    return new OidcFailure(
      claim === 'exp' ? 'expired' : 'invalid_response',
      `the ID token ${claim} check failed`,
    );
  if (/"state"/.test(messages)) return new OidcFailure('state_mismatch', 'the state does not match');
  if (/"iss"/.test(messages)) return new OidcFailure('wrong_issuer', 'the response is from another issuer');
  if (/"alg"/.test(messages))
    return new OidcFailure('bad_algorithm', 'the ID token uses an algorithm the provider does not');
  if (error instanceof TypeError || codes.includes('OAUTH_RESPONSE_IS_NOT_CONFORM'))
    return new OidcFailure('provider_unavailable', 'the provider could not be reached or answered an error', {
      cause: error,
    });
  return new OidcFailure('invalid_response', messages.slice(0, 300), { cause: error });
}
