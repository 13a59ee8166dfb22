/**
 * Sign-in with an OpenID provider, beside Cove's own directory. `begin` records the sign-in in
 * flight (state, nonce, PKCE verifier; only the hash of the browser's cookie as key) and sends
 * the browser to the provider; `complete` takes that record once, checks the callback, redeems
 * the code, finds or makes the Cove user, syncs their groups from the claim and starts an
 * ordinary Cove session. Every success and every refusal is audited with a specific reason.
 *
 * Linking rules: a (provider, subject) pair already linked wins. Otherwise a user of the same
 * name is linked only when an administrator made it for this provider (`source` =
 * `oidc:<provider>`) and it has no subject of this provider yet; a local user of the same name
 * (or a look-alike name) is never merged: the sign-in is refused and the admin is told in the log.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import * as client from 'openid-client';
import { audit } from '../audit.js';
import type { Config } from '../config.js';
import { StoreError, errors } from '../errors.js';
import { LookalikeIndex } from '../directory/confusable-skeleton.js';
import type { SessionStage, UserRecord } from '../store/store.js';
import { hashToken, newToken } from './session-service.js';
import {
  identityFromClaims,
  isClaimProblem,
  type OidcIdentity,
  type OidcProviderConfig,
} from './oidc-claims.js';
import { OidcClient, OidcFailure, type OidcClientOptions } from './oidc-client.js';
import { safeLocalPath } from './safe-local-path.js';

declare module 'fastify' {
  interface FastifyInstance {
    oidc: OidcService;
  }
}

/** What the refusal page says; `reason` is the audit slug. */
export class OidcSignInError extends Error {
  constructor(
    readonly reason: string,
    readonly statusCode: number,
    readonly title: string,
    readonly userMessage: string,
    options?: { cause?: unknown },
  ) {
    super(`${reason}: ${userMessage}`, options);
    this.name = 'OidcSignInError';
  }
}

export interface IdentityProviderView {
  readonly id: string;
  readonly name: string;
  readonly issuer: string;
  readonly provisioning: string;
  /** Cove users of this provider (made at sign-in, by an admin, or by SCIM). */
  readonly users: number;
  readonly lastSignInAt: string | null;
}

export interface ProviderTestResult {
  readonly ok: boolean;
  readonly checkedAt: string;
  readonly message: string;
}

export interface CompletedSignIn {
  readonly token: string;
  readonly stage: SessionStage;
  readonly next: string;
}

const tryAgain = 'Go back to the sign-in page and sign in again.';

/** Another sign-in linked this subject between our create and link (the transaction rolls back). */
class IdentityLinkedMeanwhile extends Error {}

/** The page each protocol failure shows. Attacks and expiries read alike: start again. */
function pageFor(failure: OidcFailure, providerName: string): OidcSignInError {
  switch (failure.reason) {
    case 'provider_unavailable':
      return new OidcSignInError(
        failure.reason,
        502,
        `${providerName} cannot be reached`,
        `Cove could not talk to ${providerName}. Try again in a minute; if it keeps failing, tell your administrator.`,
        { cause: failure },
      );
    case 'idp_error':
      return new OidcSignInError(
        failure.reason,
        403,
        `${providerName} did not sign you in`,
        `${providerName} answered that the sign-in was refused or cancelled. ${tryAgain} If you did not cancel, ask your administrator whether you may use Cove.`,
        { cause: failure },
      );
    default:
      return new OidcSignInError(
        failure.reason,
        400,
        'The sign-in could not be checked',
        `The answer from ${providerName} did not pass Cove's checks, so you were not signed in. ${tryAgain}`,
        { cause: failure },
      );
  }
}

export class OidcService {
  private readonly clients = new Map<string, OidcClient>();

  constructor(
    private readonly app: FastifyInstance,
    providers: readonly OidcProviderConfig[],
    options: OidcClientOptions,
  ) {
    for (const provider of providers) this.clients.set(provider.id, new OidcClient(provider, options));
  }

  /** For the sign-in page's buttons. */
  providers(): { id: string; name: string }[] {
    return [...this.clients.values()].map(({ provider }) => ({ id: provider.id, name: provider.name }));
  }

  /** For the admin console: each provider with its last successful sign-in and its users. */
  async adminList(): Promise<IdentityProviderView[]> {
    const [signIns, users] = await Promise.all([
      this.app.store.audit.list({ action: 'auth.oidc.login.succeeded', limit: 500 }),
      this.app.store.users.list(),
    ]);
    return [...this.clients.values()].map(({ provider }) => {
      const last = signIns.find((e) => e.details.provider === provider.id);
      return {
        id: provider.id,
        name: provider.name,
        issuer: provider.issuer,
        provisioning: provider.provisioning,
        users: users.filter((u) => u.source === `oidc:${provider.id}`).length,
        lastSignInAt: last ? new Date(last.at).toISOString() : null,
      };
    });
  }

  /** Fetches the provider's discovery document now and says plainly whether it works. */
  async test(request: FastifyRequest, providerId: string): Promise<ProviderTestResult> {
    const rp = this.clients.get(providerId);
    if (!rp) throw errors.notFound(`Identity provider ${providerId}`);
    const checkedAt = new Date(this.app.now()).toISOString();
    let result: ProviderTestResult;
    try {
      const found = await rp.check();
      result = {
        ok: true,
        checkedAt,
        message: `Discovery works: ${rp.provider.name} answers as ${found.issuer} (${found.endpoints.length} endpoints).`,
      };
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : '';
      const detail = error instanceof OidcFailure ? error.detail : 'discovery failed';
      result = {
        ok: false,
        checkedAt,
        message: `Cove could not use ${rp.provider.name}: ${detail}${cause ? ` (${cause.slice(0, 200)})` : ''}. Check the issuer URL in auth.oidc and that Cove can reach it.`,
      };
    }
    await audit(this.app.store, request, {
      action: 'admin.identity_provider.tested',
      target: providerId,
      details: { ok: result.ok },
    });
    return result;
  }

  has(providerId: string): boolean {
    return this.clients.has(providerId);
  }

  private client(providerId: string): OidcClient {
    const found = this.clients.get(providerId);
    if (!found)
      throw new OidcSignInError(
        'unknown_provider',
        404,
        'No such sign-in option',
        'Cove has no identity provider by that name. Pick one on the sign-in page.',
      );
    return found;
  }

  /** Starts a sign-in: returns the cookie value that binds it to this browser and where to go. */
  async begin(
    request: FastifyRequest,
    providerId: string,
    next: string | undefined,
  ): Promise<{ cookie: string; redirect: string }> {
    const rp = this.client(providerId);
    const checks = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier: client.randomPKCECodeVerifier(),
    };
    let url: URL;
    try {
      url = await rp.authorizationUrl(checks);
    } catch (error) {
      const failure =
        error instanceof OidcFailure
          ? error
          : new OidcFailure('provider_unavailable', 'discovery failed', { cause: error });
      await this.refused(request, rp.provider, failure.reason, failure.detail, null);
      request.log.warn(
        { provider: providerId, reason: failure.reason, detail: failure.detail },
        'OIDC sign-in could not start',
      );
      throw pageFor(failure, rp.provider.name);
    }
    const cookie = newToken();
    await this.app.store.oidcLogins.create({
      idHash: hashToken(cookie),
      providerId,
      ...checks,
      next: safeLocalPath(next),
      expiresAt: this.app.now() + this.app.config.auth.oidcLoginTtlS * 1000,
    });
    return { cookie, redirect: url.href };
  }

  /** Finishes a sign-in from the provider's callback; throws OidcSignInError with the page to show. */
  async complete(
    request: FastifyRequest,
    providerId: string,
    cookie: string | undefined,
    query: URLSearchParams,
  ): Promise<CompletedSignIn> {
    const rp = this.client(providerId);
    const { provider } = rp;
    // Taken (deleted) before anything else: whatever happens next, this sign-in cannot be replayed.
    const login = cookie
      ? await this.app.store.oidcLogins.take(hashToken(cookie), this.app.now())
      : undefined;
    if (!login || login.providerId !== providerId) {
      const reason = !cookie ? 'no_sign_in_cookie' : !login ? 'sign_in_expired_or_used' : 'provider_mismatch';
      await this.refused(request, provider, reason, 'no sign-in in progress for this browser', null);
      throw new OidcSignInError(
        reason,
        400,
        'This sign-in has expired',
        `Cove has no sign-in in progress for this browser: it took too long, it was already used, or it was started elsewhere. ${tryAgain}`,
      );
    }
    const idpError = query.get('error');
    if (idpError !== null) {
      const failure = new OidcFailure('idp_error', `the provider answered ${idpError.slice(0, 64)}`);
      await this.refused(request, provider, failure.reason, failure.detail, null);
      throw pageFor(failure, provider.name);
    }
    if (query.get('state') !== login.state) {
      const failure = new OidcFailure('state_mismatch', 'the state does not match the sign-in in progress');
      await this.refused(request, provider, failure.reason, failure.detail, null);
      throw pageFor(failure, provider.name);
    }

    let claims: Readonly<Record<string, unknown>>;
    let idToken: string;
    try {
      ({ claims, idToken } = await rp.redeem(query, login));
    } catch (error) {
      const failure =
        error instanceof OidcFailure
          ? error
          : new OidcFailure('invalid_response', 'unexpected error', { cause: error });
      await this.refused(request, provider, failure.reason, failure.detail, null);
      request.log.warn(
        { provider: providerId, reason: failure.reason, detail: failure.detail },
        'OIDC sign-in refused',
      );
      throw pageFor(failure, provider.name);
    }

    const identity = identityFromClaims(claims, provider);
    if (isClaimProblem(identity)) {
      await this.refused(
        request,
        provider,
        identity.reason,
        identity.detail,
        typeof claims.sub === 'string' ? claims.sub : null,
      );
      throw identity.reason === 'email_unverified'
        ? new OidcSignInError(
            identity.reason,
            403,
            'Your email address is not verified',
            `Cove uses your email address as your user name, and ${provider.name} says it is not verified. Verify it at ${provider.name}, then sign in again.`,
          )
        : new OidcSignInError(
            identity.reason,
            403,
            'Your account cannot be used with Cove',
            `${provider.name} did not send a user name Cove can use (${identity.detail}). Ask your administrator to check the provider's settings.`,
          );
    }

    const user = await this.userFor(request, provider, identity);
    const sync =
      identity.groups === null
        ? { added: [], removed: [], unknown: [], ignoredAdmins: false }
        : await this.app.directory.syncClaimedGroups(user.id, identity.groups, {
            adminsFromClaim: provider.adminsFromClaim,
          });
    if (sync.unknown.length > 0 || sync.ignoredAdmins)
      request.log.info(
        {
          provider: provider.id,
          unknownGroups: sync.unknown.slice(0, 50),
          ignoredAdmins: sync.ignoredAdmins,
        },
        'groups in the OIDC claim that Cove does not map',
      );

    const mfaByIdp = provider.trustIdpMfa && identity.mfa;
    // A second factor Cove knows about is asked for unless the provider did one Cove trusts.
    const stage: SessionStage = !mfaByIdp && user.totpSecret ? 'mfa' : 'full';
    if (request.session) await this.app.sessions.destroy(request.session);
    const { token } = await this.app.sessions.create(user.id, stage, {
      providerId: provider.id,
      mfaByIdp,
      idToken,
    });
    if (stage === 'full') await this.app.store.users.update(user.id, { lastLoginAt: this.app.now() });
    await audit(this.app.store, request, {
      action: stage === 'mfa' ? 'auth.oidc.login.mfa_pending' : 'auth.oidc.login.succeeded',
      target: user.id,
      actor: { id: user.id, name: user.username },
      details: {
        provider: provider.id,
        subject: identity.subject,
        mfaByIdp,
        groupsAdded: sync.added,
        groupsRemoved: sync.removed,
        groupsUnknown: sync.unknown.slice(0, 50),
        ...(sync.ignoredAdmins ? { ignoredAdminsClaim: true } : {}),
      },
    });
    // With Cove's own MFA still to do, the sign-in page asks for the code, then goes on to `next`.
    const next = stage === 'mfa' ? `/login?next=${encodeURIComponent(login.next)}` : login.next;
    return { token, stage, next };
  }

  /** The linked user, a pre-provisioned one to link now, or a new one (jit); refusals otherwise. */
  private async userFor(
    request: FastifyRequest,
    provider: OidcProviderConfig,
    identity: OidcIdentity,
  ): Promise<UserRecord> {
    const { store } = this.app;
    const source = `oidc:${provider.id}`;
    const linked = await store.identities.get(provider.id, identity.subject);
    let user = linked ? await store.users.get(linked.userId) : undefined;
    if (!user) {
      const existing = await store.users.getByUsername(identity.username);
      if (existing) {
        const hasSubject = (await store.identities.listFor(existing.id)).some(
          (i) => i.providerId === provider.id,
        );
        if (existing.source !== source || hasSubject)
          await this.collision(request, provider, identity, existing.username);
        await store.identities.link({
          providerId: provider.id,
          subject: identity.subject,
          userId: existing.id,
        });
        await audit(store, request, {
          action: 'auth.oidc.linked',
          target: existing.id,
          actor: { id: existing.id, name: existing.username },
          details: { provider: provider.id, subject: identity.subject },
        });
        user = existing;
      } else {
        if (provider.provisioning !== 'jit') {
          await this.refused(
            request,
            provider,
            'not_provisioned',
            `no Cove user ${identity.username}`,
            identity.subject,
          );
          throw new OidcSignInError(
            'not_provisioned',
            403,
            'You have no Cove account yet',
            `${provider.name} signed you in as ${identity.username}, but your administrator has not given that user access to Cove. Ask them to add you.`,
          );
        }
        const lookalike = new LookalikeIndex((await store.users.list()).map((u) => u.username)).find(
          identity.username,
        );
        if (lookalike !== undefined) await this.collision(request, provider, identity, lookalike);
        user = await this.createLinked(request, provider, identity, source);
      }
    }
    if (user.disabled) {
      await this.refused(
        request,
        provider,
        'disabled',
        `user ${user.username} is disabled`,
        identity.subject,
        user,
      );
      throw new OidcSignInError(
        'disabled',
        403,
        'Your Cove account is disabled',
        'Your administrator has disabled your Cove account. Ask them to enable it.',
      );
    }
    return user;
  }

  private async createLinked(
    request: FastifyRequest,
    provider: OidcProviderConfig,
    identity: OidcIdentity,
    source: string,
  ): Promise<UserRecord> {
    const { store } = this.app;
    let user: UserRecord;
    try {
      user = await store.transaction(async (tx) => {
        const created = await tx.users.create({
          username: identity.username,
          email: identity.email,
          source,
        });
        if (
          !(await tx.identities.link({
            providerId: provider.id,
            subject: identity.subject,
            userId: created.id,
          }))
        )
          throw new IdentityLinkedMeanwhile();
        return created;
      });
    } catch (error) {
      // A database that cannot serve says so (503), rather than as a race.
      if (
        !(error instanceof IdentityLinkedMeanwhile) &&
        !(error instanceof StoreError && error.kind === 'conflict')
      )
        throw error;
      // Two first sign-ins racing: the other one made the user; this one starts again.
      throw new OidcSignInError(
        'create_conflict',
        409,
        'Your account was being set up',
        `Cove was already setting up your account from another sign-in. ${tryAgain}`,
        { cause: error },
      );
    }
    await audit(store, request, {
      action: 'auth.oidc.user_created',
      target: user.id,
      actor: { id: user.id, name: user.username },
      details: { provider: provider.id, subject: identity.subject },
    });
    return user;
  }

  private async collision(
    request: FastifyRequest,
    provider: OidcProviderConfig,
    identity: OidcIdentity,
    taken: string,
  ): Promise<never> {
    await this.refused(
      request,
      provider,
      'name_collision',
      `user name ${identity.username} is taken by Cove user ${taken}, which is not linked to this provider; link it or rename one of them`,
      identity.subject,
    );
    throw new OidcSignInError(
      'name_collision',
      409,
      'Your user name is already taken in Cove',
      `${provider.name} signed you in as ${identity.username}, but Cove already has a different user with that name (or one that looks the same), and Cove never merges accounts on its own. Your administrator has been told; ask them to sort it out.`,
    );
  }

  private async refused(
    request: FastifyRequest,
    provider: OidcProviderConfig,
    reason: string,
    detail: string,
    subject: string | null,
    user?: UserRecord,
  ): Promise<void> {
    await audit(this.app.store, request, {
      action: 'auth.oidc.login.failed',
      target: user?.id ?? null,
      actor: { id: user?.id ?? null, name: user?.username ?? null },
      details: { provider: provider.id, reason, detail, ...(subject ? { subject } : {}) },
    });
  }

  /** Where the browser goes after Cove's own logout: the provider's logout page when it has one. */
  async logoutUrl(providerId: string | null, idToken: string | null): Promise<string | undefined> {
    if (!providerId) return undefined;
    const rp = this.clients.get(providerId);
    if (!rp) return undefined;
    const url = await rp.endSessionUrl(idToken, `${this.app.config.publicUrl}/login?signed-out=1`);
    return url?.href;
  }
}

export function oidcClientOptions(config: Config): OidcClientOptions {
  return { publicUrl: config.publicUrl, clockToleranceS: config.auth.oidcClockToleranceS };
}

export default fp(
  async (app: FastifyInstance, opts: { clientOptions?: Partial<OidcClientOptions> }) => {
    const service = new OidcService(app, app.config.auth.oidc, {
      ...oidcClientOptions(app.config),
      ...opts.clientOptions,
    });
    app.decorate('oidc', service);
  },
  { name: 'oidc', dependencies: ['auth', 'directory'] },
);
