/**
 * `app.ssoSignIn`: Cove as the AWS CLI's IAM Identity Center sign-in (SSO OIDC). The CLI registers
 * a client, asks for a sign-in (a device code it polls with, or an authorization code with PKCE
 * sent to its loopback address), a signed-in person approves or denies the request on Cove's
 * "Authorize request" page, and the CLI gets an access token (short) and a refresh token (bound
 * to its client, good until the sign-in's session ends).
 *
 * - Codes and tokens are random; the store keeps only their SHA-256.
 * - A refresh token works once: each refresh hands out a new pair in the same family, which
 *   Logout, the user's Cove sign-out and disabling the user end.
 * - Every failure is an `AwsApiError` in AWS's own shape (aws-api-error.ts), or for the page's
 *   routes a `CoveError`.
 * - Wrong user codes on the page count as failures per user (`sso.user-code`): after a few, the
 *   user waits, so codes cannot be guessed.
 */
import fp from 'fastify-plugin';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { audit } from '../audit.js';
import { errors } from '../errors.js';
import type { Config } from '../config.js';
import type { SsoGrantRecord, SsoTokenRecord, Store, ThrottlePolicy, UserRecord } from '../store/store.js';
import { StoreError } from '../errors.js';
import type { SsoDecision, SsoRequestView } from '../protocol/sso.js';
import { oidcErrors } from './aws-api-error.js';
import {
  isCodeVerifier,
  isLoopbackRedirect,
  newSecret,
  newUserCode,
  normalizeUserCode,
  s256,
  sha256Hex,
} from './sso-codes.js';

declare module 'fastify' {
  interface FastifyInstance {
    ssoSignIn: SsoSignInService;
  }
}

export const deviceGrantType = 'urn:ietf:params:oauth:grant-type:device_code';

export interface RegisterClientInput {
  readonly clientName?: string | undefined;
  readonly clientType?: string | undefined;
}

export interface RegisterClientOutput {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly clientIdIssuedAt: number;
  readonly clientSecretExpiresAt: number;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
}

export interface StartDeviceAuthorizationOutput {
  readonly deviceCode: string;
  readonly userCode: string;
  readonly verificationUri: string;
  readonly verificationUriComplete: string;
  readonly expiresIn: number;
  readonly interval: number;
}

export interface CreateTokenInput {
  readonly clientId?: string | undefined;
  readonly clientSecret?: string | undefined;
  readonly grantType?: string | undefined;
  readonly deviceCode?: string | undefined;
  readonly code?: string | undefined;
  readonly refreshToken?: string | undefined;
  readonly redirectUri?: string | undefined;
  readonly codeVerifier?: string | undefined;
}

export interface CreateTokenOutput {
  readonly accessToken: string;
  readonly tokenType: 'Bearer';
  readonly expiresIn: number;
  readonly refreshToken: string;
}

export interface AuthorizeInput {
  readonly responseType?: string | undefined;
  readonly clientId?: string | undefined;
  readonly redirectUri?: string | undefined;
  readonly state?: string | undefined;
  readonly codeChallenge?: string | undefined;
  readonly codeChallengeMethod?: string | undefined;
}

/** The user behind a valid access token. */
export interface SsoCaller {
  readonly user: UserRecord;
  readonly token: SsoTokenRecord;
}

/** An approved authorization code must be redeemed at once: the browser is on its way to the CLI. */
const authorizationCodeTtlMs = 60_000;
/** Expired requests stay this long so a late poll hears "expired" rather than "unknown". */
const expiredKeepMs = 3_600_000;

/**
 * RegisterClient and StartDeviceAuthorization need no sign-in and each stores a row: per client
 * address, 30 in a quarter of an hour, then a wait (a CLI registers once per 90 days).
 */
export const requestScope = 'sso.requests';
const requestPolicy: ThrottlePolicy = {
  // The request being made counts before the check: 31 lets 30 through.
  allowed: 31,
  quietMs: 900_000,
  baseDelayMs: 60_000,
  maxDelayMs: 900_000,
};

export const userCodeScope = 'sso.user-code';
const userCodePolicy: ThrottlePolicy = {
  allowed: 5,
  quietMs: 900_000,
  baseDelayMs: 30_000,
  maxDelayMs: 900_000,
};

export interface SsoSignInDependencies {
  readonly store: Store;
  readonly config: Config;
  readonly now: () => number;
  readonly log: FastifyBaseLogger;
}

export class SsoSignInService {
  private readonly publicUrl: string;

  constructor(private readonly deps: SsoSignInDependencies) {
    this.publicUrl = deps.config.publicUrl.replace(/\/+$/, '');
  }

  /** The URL users give `sso_start_url`. */
  get startUrl(): string {
    return `${this.publicUrl}/start`;
  }

  async registerClient(input: RegisterClientInput, ip: string): Promise<RegisterClientOutput> {
    await this.countRequest(ip);
    const clientName = (input.clientName ?? '').trim();
    if (clientName === '' || clientName.length > 128)
      throw oidcErrors.invalidRequest('clientName must be 1 to 128 characters.');
    if (input.clientType !== 'public')
      throw oidcErrors.invalidRequest('clientType must be "public", as the AWS CLI and SDKs send.');
    const now = this.deps.now();
    await this.sweep(now);
    const clientId = newSecret();
    const clientSecret = newSecret();
    const expiresAt = now + this.deps.config.sso.clientTtlS * 1000;
    await this.deps.store.ssoClients.create({
      clientId,
      secretHash: sha256Hex(clientSecret),
      name: clientName,
      createdAt: now,
      expiresAt,
    });
    return {
      clientId,
      clientSecret,
      clientIdIssuedAt: Math.floor(now / 1000),
      clientSecretExpiresAt: Math.floor(expiresAt / 1000),
      authorizationEndpoint: `${this.publicUrl}/aws/oidc/authorize`,
      tokenEndpoint: `${this.publicUrl}/aws/oidc/token`,
    };
  }

  async startDeviceAuthorization(
    input: {
      clientId?: string | undefined;
      clientSecret?: string | undefined;
      startUrl?: string | undefined;
    },
    ip: string,
  ): Promise<StartDeviceAuthorizationOutput> {
    await this.countRequest(ip);
    const client = await this.authenticateClient(input.clientId, input.clientSecret);
    if (!this.isStartUrl(input.startUrl))
      throw oidcErrors.invalidRequest(`startUrl must be this Cove's start URL, ${this.startUrl}.`);
    const deviceCode = newSecret();
    const now = this.deps.now();
    const ttlS = this.deps.config.sso.requestTtlS;
    const userCode = await this.createGrant({
      codeHash: sha256Hex(deviceCode),
      kind: 'device',
      clientId: client.clientId,
      redirectUri: null,
      state: null,
      codeChallenge: null,
      createdAt: now,
      expiresAt: now + ttlS * 1000,
    });
    return {
      deviceCode,
      userCode,
      verificationUri: `${this.publicUrl}/device`,
      verificationUriComplete: `${this.publicUrl}/device?user_code=${userCode}`,
      expiresIn: ttlS,
      interval: this.deps.config.sso.pollIntervalS,
    };
  }

  /**
   * The browser's first stop in the authorization code flow: checks the request and returns the
   * page where the person answers it. Nothing here redirects to the client's address before the
   * client and its loopback address are known good.
   */
  async authorize(input: AuthorizeInput): Promise<string> {
    if (input.responseType !== 'code') throw errors.badRequest('response_type must be "code".');
    const client = input.clientId ? await this.deps.store.ssoClients.get(input.clientId) : undefined;
    if (!client || client.expiresAt <= this.deps.now())
      throw errors.badRequest(
        'The command line client is not registered with Cove. Run `aws sso login` again.',
      );
    if (!input.redirectUri || !isLoopbackRedirect(input.redirectUri))
      throw errors.badRequest(
        'redirect_uri must be a loopback address (http://127.0.0.1, http://localhost or http://[::1], any port).',
      );
    if (
      input.codeChallengeMethod !== 'S256' ||
      !input.codeChallenge ||
      !/^[A-Za-z0-9_-]{43}$/.test(input.codeChallenge)
    )
      throw errors.badRequest('A PKCE code_challenge with code_challenge_method S256 is required.');
    if ((input.state ?? '').length > 512) throw errors.badRequest('state is too long.');
    const now = this.deps.now();
    const userCode = await this.createGrant({
      // A placeholder nobody knows: the authorization code is made when the person approves.
      codeHash: sha256Hex(newSecret()),
      kind: 'code',
      clientId: client.clientId,
      redirectUri: input.redirectUri,
      state: input.state ?? null,
      codeChallenge: input.codeChallenge,
      createdAt: now,
      expiresAt: now + this.deps.config.sso.requestTtlS * 1000,
    });
    return `/device?user_code=${userCode}`;
  }

  async createToken(input: CreateTokenInput): Promise<CreateTokenOutput> {
    const client = await this.authenticateClient(input.clientId, input.clientSecret);
    switch (input.grantType) {
      case deviceGrantType:
        return this.redeemDeviceCode(client.clientId, input.deviceCode);
      case 'authorization_code':
        return this.redeemAuthorizationCode(client.clientId, input);
      case 'refresh_token':
        return this.refresh(client.clientId, input.refreshToken);
      case undefined:
        throw oidcErrors.invalidRequest('grantType is required.');
      default:
        throw oidcErrors.unsupportedGrantType();
    }
  }

  /** The user behind a portal call's access token; undefined when the token or its user is no good. */
  async caller(accessToken: string | undefined): Promise<SsoCaller | undefined> {
    if (!accessToken) return undefined;
    const token = await this.deps.store.ssoTokens.get(sha256Hex(accessToken));
    if (!token || token.kind !== 'access' || token.expiresAt <= this.deps.now()) return undefined;
    const user = await this.deps.store.users.get(token.userId);
    if (!user || user.disabled) return undefined;
    return { user, token };
  }

  /** Portal Logout: ends the token's whole family (its refresh tokens too). */
  async logout(caller: SsoCaller, request?: FastifyRequest): Promise<void> {
    await this.deps.store.ssoTokens.deleteFamily(caller.token.familyId);
    await audit(this.deps.store, request, {
      action: 'sso.logout',
      actor: { id: caller.user.id, name: caller.user.username },
      target: caller.user.id,
    });
  }

  /** Ends every command line sign-in of the user (Cove sign-out, user disabled). */
  async revokeForUser(userId: string): Promise<number> {
    return this.deps.store.ssoTokens.deleteForUser(userId);
  }

  /** The page's view of a waiting request; wrong codes count toward the user's throttle. */
  async requestFor(user: UserRecord, rawUserCode: string): Promise<SsoRequestView> {
    const grant = await this.pendingGrant(user, rawUserCode);
    const client = await this.deps.store.ssoClients.get(grant.clientId);
    return {
      userCode: grant.userCode,
      kind: grant.kind,
      clientName: client?.name ?? 'an unknown application',
      expiresAt: grant.expiresAt,
    };
  }

  async decide(
    user: UserRecord,
    rawUserCode: string,
    allow: boolean,
    request?: FastifyRequest,
  ): Promise<SsoDecision> {
    const grant = await this.pendingGrant(user, rawUserCode);
    const now = this.deps.now();
    const status = allow ? 'approved' : 'denied';
    const code = grant.kind === 'code' && allow ? newSecret() : undefined;
    const decided = await this.deps.store.ssoGrants.decide(
      grant.userCode,
      code
        ? { userId: user.id, status, codeHash: sha256Hex(code), expiresAt: now + authorizationCodeTtlMs }
        : { userId: user.id, status },
      now,
    );
    if (!decided) throw errors.ssoRequestUnknown();
    const client = await this.deps.store.ssoClients.get(grant.clientId);
    await audit(this.deps.store, request, {
      action: allow ? 'sso.request.approve' : 'sso.request.deny',
      actor: { id: user.id, name: user.username },
      target: user.id,
      details: { kind: grant.kind, client: client?.name ?? null },
    });
    if (grant.kind === 'device' || !grant.redirectUri) return { status };
    const target = new URL(grant.redirectUri);
    if (code) target.searchParams.set('code', code);
    else {
      target.searchParams.set('error', 'access_denied');
      target.searchParams.set('error_description', 'The sign-in request was denied in Cove.');
    }
    if (grant.state !== null) target.searchParams.set('state', grant.state);
    return { status, redirectTo: target.toString() };
  }

  // ---- internals ----

  private async countRequest(ip: string): Promise<void> {
    const now = this.deps.now();
    const { blockedUntil } = await this.deps.store.throttles.recordFailure(
      requestScope,
      ip,
      now,
      requestPolicy,
    );
    if (blockedUntil > now) throw oidcErrors.tooManyRequests(Math.ceil((blockedUntil - now) / 1000));
  }

  private isStartUrl(startUrl: string | undefined): boolean {
    if (!startUrl) return false;
    return startUrl.replace(/#.*$/, '').replace(/\/+$/, '') === this.startUrl;
  }

  private async authenticateClient(clientId: string | undefined, clientSecret: string | undefined) {
    if (!clientId || !clientSecret) throw oidcErrors.invalidClient();
    const client = await this.deps.store.ssoClients.get(clientId);
    if (!client || client.expiresAt <= this.deps.now() || client.secretHash !== sha256Hex(clientSecret))
      throw oidcErrors.invalidClient();
    return client;
  }

  /** Creates the grant with a fresh user code (drawing again on the rare clash); returns the code. */
  private async createGrant(grant: Omit<SsoGrantRecord, 'status' | 'userId' | 'lastPolledAt' | 'userCode'>) {
    for (let attempt = 0; ; attempt++) {
      const userCode = newUserCode();
      try {
        await this.deps.store.ssoGrants.create({ ...grant, userCode });
        return userCode;
      } catch (error) {
        if (!(error instanceof StoreError && error.kind === 'conflict') || attempt >= 4) throw error;
      }
    }
  }

  private async pendingGrant(user: UserRecord, rawUserCode: string): Promise<SsoGrantRecord> {
    const now = this.deps.now();
    const { throttles } = this.deps.store;
    const waitMs = await throttles.retryAfter(userCodeScope, user.id, now);
    if (waitMs > 0) throw errors.ssoThrottled(Math.ceil(waitMs / 1000));
    const userCode = normalizeUserCode(rawUserCode);
    const grant = userCode ? await this.deps.store.ssoGrants.getByUserCode(userCode) : undefined;
    if (!grant || grant.status !== 'pending' || grant.expiresAt <= now) {
      await throttles.recordFailure(userCodeScope, user.id, now, userCodePolicy);
      throw errors.ssoRequestUnknown();
    }
    return grant;
  }

  private async redeemDeviceCode(clientId: string, deviceCode: string | undefined) {
    if (!deviceCode) throw oidcErrors.invalidRequest('deviceCode is required.');
    const { ssoGrants } = this.deps.store;
    const codeHash = sha256Hex(deviceCode);
    const now = this.deps.now();
    const grant = await ssoGrants.get(codeHash);
    if (!grant || grant.kind !== 'device' || grant.clientId !== clientId)
      throw oidcErrors.invalidGrant('The device code is not valid for this client.');
    if (grant.expiresAt <= now) throw oidcErrors.expiredToken();
    if (grant.status === 'pending') {
      const onTime = await ssoGrants.recordPoll(codeHash, now, this.deps.config.sso.pollIntervalS * 1000);
      throw onTime ? oidcErrors.authorizationPending() : oidcErrors.slowDown();
    }
    const taken = await ssoGrants.take(codeHash, now);
    if (!taken) throw oidcErrors.invalidGrant('The device code was used already.');
    if (taken.status === 'denied' || !taken.userId) throw oidcErrors.accessDenied();
    return this.issue(clientId, taken.userId);
  }

  private async redeemAuthorizationCode(clientId: string, input: CreateTokenInput) {
    if (!input.code || !input.codeVerifier || !input.redirectUri)
      throw oidcErrors.invalidRequest('code, codeVerifier and redirectUri are required.');
    const grant = await this.deps.store.ssoGrants.take(sha256Hex(input.code), this.deps.now());
    if (
      !grant ||
      grant.kind !== 'code' ||
      grant.status !== 'approved' ||
      !grant.userId ||
      grant.clientId !== clientId ||
      grant.redirectUri !== input.redirectUri ||
      !isCodeVerifier(input.codeVerifier) ||
      grant.codeChallenge !== s256(input.codeVerifier)
    )
      throw oidcErrors.invalidGrant(
        'The authorization code is not valid, expired, or was issued to another client.',
      );
    return this.issue(clientId, grant.userId);
  }

  private async refresh(clientId: string, refreshToken: string | undefined) {
    if (!refreshToken) throw oidcErrors.invalidRequest('refreshToken is required.');
    const { ssoTokens } = this.deps.store;
    const tokenHash = sha256Hex(refreshToken);
    const now = this.deps.now();
    const invalid = () =>
      oidcErrors.invalidGrant('The refresh token is not valid. Run `aws sso login` again.');
    const known = await ssoTokens.get(tokenHash);
    // Another client's token is refused without being used up: its owner keeps it.
    if (!known || known.kind !== 'refresh' || known.clientId !== clientId) throw invalid();
    const token = await ssoTokens.take(tokenHash, now);
    if (!token) throw invalid();
    return this.issue(clientId, token.userId, { familyId: token.familyId, sessionEndsAt: token.expiresAt });
  }

  private async issue(
    clientId: string,
    userId: string,
    family?: { familyId: string; sessionEndsAt: number },
  ): Promise<CreateTokenOutput> {
    const user = await this.deps.store.users.get(userId);
    if (!user || user.disabled) throw oidcErrors.accessDenied();
    const now = this.deps.now();
    const familyId = family?.familyId ?? newSecret();
    const sessionEndsAt = family?.sessionEndsAt ?? now + this.deps.config.sso.sessionTtlS * 1000;
    const accessExpiresAt = Math.min(sessionEndsAt, now + this.deps.config.sso.accessTokenTtlS * 1000);
    const accessToken = newSecret();
    const refreshToken = newSecret();
    const common = { familyId, clientId, userId, createdAt: now };
    await this.deps.store.ssoTokens.create([
      { ...common, tokenHash: sha256Hex(accessToken), kind: 'access', expiresAt: accessExpiresAt },
      { ...common, tokenHash: sha256Hex(refreshToken), kind: 'refresh', expiresAt: sessionEndsAt },
    ]);
    if (!family)
      await audit(this.deps.store, undefined, {
        action: 'sso.token.issue',
        actor: { id: user.id, name: user.username },
        target: user.id,
        details: { expiration: new Date(sessionEndsAt).toISOString() },
      });
    return {
      accessToken,
      tokenType: 'Bearer',
      expiresIn: Math.max(1, Math.floor((accessExpiresAt - now) / 1000)),
      refreshToken,
    };
  }

  /** Cheap deletes of what has expired, on registration (the rarest call). */
  private async sweep(now: number): Promise<void> {
    const { ssoClients, ssoGrants, ssoTokens } = this.deps.store;
    await Promise.all([
      ssoClients.deleteExpired(now),
      ssoGrants.deleteExpired(now - expiredKeepMs),
      ssoTokens.deleteExpired(now),
    ]);
  }
}

export default fp(
  async (app: FastifyInstance) => {
    const service = new SsoSignInService({
      store: app.store,
      config: app.config,
      now: app.now,
      log: app.log.child({ component: 'sso' }),
    });
    app.decorate('ssoSignIn', service);
    // A disabled user's command line sign-ins end at once (the portal calls also re-check).
    const subscription = app.directory.onAccessChanged((change) => {
      if (!('userIds' in change)) return;
      for (const id of change.userIds)
        void app.store.users.get(id).then(
          async (user) => {
            if (!user || user.disabled) await service.revokeForUser(id);
          },
          (error: unknown) => app.log.warn({ err: error }, 'could not end command line sign-ins'),
        );
    });
    app.addHook('onClose', async () => subscription.dispose());
  },
  { name: 'sso-sign-in', dependencies: ['directory'] },
);
