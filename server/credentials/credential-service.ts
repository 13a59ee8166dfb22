/**
 * `app.credentials`: temporary AWS credentials for one user's assignment, checked against the
 * directory every time, issued by the `CredentialBroker` (STS), audited.
 *
 * For container delivery and the portal:
 *
 *   app.credentials.forAssignment(
 *     userId: string,
 *     accountId: string,
 *     permissionSetName: string,
 *     options?: { minRemainingS?: number; purpose?: 'shell' | 'cli' | 'profile' | 'sso'; request?: FastifyRequest },
 *   ): Promise<IssuedCredentials>   // { credentials: {accessKeyId, secretAccessKey, sessionToken, expiration: Date}, notice? }
 *
 * - Rejects with 403 `COVE_ERR_CREDENTIALS_ACCESS` (one identical body) when the user may not use
 *   that account × permission set: unknown account, unknown permission set, not assigned, user
 *   disabled or gone. No STS call is made then.
 * - Rejects with 403 `COVE_ERR_CREDENTIALS_ASSUME_ROLE`, 503 `COVE_ERR_CREDENTIALS_NOT_CONFIGURED`
 *   (the install cannot use STS) or 503 `COVE_ERR_CREDENTIALS_UNAVAILABLE` (transient) from the
 *   broker; every message is safe to show the user (in the shell too).
 * - `minRemainingS`: serve cached credentials only when they last at least this much longer.
 * - Audit `credentials.issue` (user, account, permission set, expiry, purpose; never a key id or
 *   secret): once per set of credentials STS issued (cache hits are not new issues), and every
 *   time for `cli` and `sso`, where they leave Cove for a person's screen or machine.
 * - Access changes (`directory.onAccessChanged`) drop the affected users' cached credentials.
 * - `stsHealth()`: what the broker last saw of STS (for /readyz and the admin console).
 */
import fp from 'fastify-plugin';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { audit } from '../audit.js';
import { CoveError, errors } from '../errors.js';
import type { Store } from '../store/store.js';
import type { DirectoryService } from '../directory/directory-service.js';
import type { StsHealthView } from '../protocol/api.js';
import type { CredentialBroker, IssuedCredentials } from './credential-broker.js';
import { StsCredentialBroker } from './sts-credential-broker.js';

declare module 'fastify' {
  interface FastifyInstance {
    credentials: CredentialService;
  }
}

/**
 * Why credentials were asked for: a shell's container, the portal's panel, a named profile, or
 * an SDK on the user's own machine through the SSO portal API (GetRoleCredentials).
 */
export type CredentialPurpose = 'shell' | 'cli' | 'profile' | 'sso';

export interface ForAssignmentOptions {
  readonly minRemainingS?: number;
  /** Default `shell`. */
  readonly purpose?: CredentialPurpose;
  /** The HTTP request that asked, for the audit entry's address. */
  readonly request?: FastifyRequest;
}

export interface CredentialServiceDependencies {
  readonly broker: CredentialBroker;
  readonly directory: Pick<DirectoryService, 'accessFor' | 'onAccessChanged'>;
  readonly store: Store;
  readonly log: FastifyBaseLogger;
}

/**
 * The portal's panel shows credentials issued at most this long ago (like IAM Identity Center,
 * which issues new ones each time), so what a user copies lasts about the full session.
 */
const cliMaxAgeS = 300;

export class CredentialService {
  /** Credentials already audited as issued; a cache hit returns the same object. */
  private readonly audited = new WeakSet<IssuedCredentials>();
  private readonly subscription: { dispose(): void };

  constructor(private readonly deps: CredentialServiceDependencies) {
    this.subscription = deps.directory.onAccessChanged((change) => {
      if ('userIds' in change) {
        deps.broker.forget(change.userIds);
        return;
      }
      deps.store.users.list().then(
        (users) => deps.broker.forget(users.map((u) => u.id)),
        (error: unknown) => deps.log.warn({ err: error }, 'could not list users to drop cached credentials'),
      );
    });
  }

  async forAssignment(
    userId: string,
    accountId: string,
    permissionSetName: string,
    options: ForAssignmentOptions = {},
  ): Promise<IssuedCredentials> {
    const purpose = options.purpose ?? 'shell';
    const [entry, user, groups] = await Promise.all([
      this.deps.directory.accessFor(userId, accountId, permissionSetName),
      this.deps.store.users.get(userId),
      this.deps.store.groups.groupsOf(userId),
    ]);
    if (!entry || !user || user.disabled) throw errors.credentialsNoAccess();

    let issued: IssuedCredentials;
    try {
      issued = await this.deps.broker.issue(
        {
          userId,
          username: user.username,
          groups: groups.map((g) => g.name),
          accountId: entry.accountId,
          accountName: entry.accountName,
          permissionSet: entry.permissionSet,
          roleArn: entry.roleArn,
          sessionDurationS: entry.sessionDurationS,
          sessionPolicy: entry.sessionPolicy,
        },
        {
          minRemainingS:
            options.minRemainingS ?? (purpose === 'cli' ? entry.sessionDurationS - cliMaxAgeS : 0),
        },
      );
    } catch (error) {
      const coded = error instanceof CoveError ? error : errors.credentialsUnavailable(error);
      // The admin's view: which role, and STS's own words (in the cause); the user gets the code.
      this.deps.log.warn(
        {
          code: coded.code,
          accountId: entry.accountId,
          permissionSet: entry.permissionSet,
          err: coded.cause,
        },
        'credentials not issued',
      );
      throw coded;
    }

    if (purpose === 'cli' || purpose === 'sso' || !this.audited.has(issued)) {
      this.audited.add(issued);
      await audit(this.deps.store, options.request, {
        action: 'credentials.issue',
        actor: { id: user.id, name: user.username },
        target: `${entry.accountId}/${entry.permissionSet}`,
        details: {
          accountId: entry.accountId,
          accountName: entry.accountName,
          permissionSet: entry.permissionSet,
          expiration: issued.credentials.expiration.toISOString(),
          purpose,
          ...(issued.notice ? { notice: issued.notice } : {}),
        },
      });
    }
    return issued;
  }

  stsHealth(): StsHealthView {
    return this.deps.broker.health?.() ?? { status: 'unknown', endpoint: 'a broker without health reports' };
  }

  dispose(): void {
    this.subscription.dispose();
  }
}

export interface CredentialServiceOptions {
  /** Default: an `StsCredentialBroker` built from `config.sts`. */
  readonly broker?: CredentialBroker;
}

export default fp(
  async (app: FastifyInstance, opts: CredentialServiceOptions) => {
    const { sts } = app.config;
    const broker =
      opts.broker ??
      new StsCredentialBroker({
        region: sts.region,
        ...(sts.endpoint ? { endpoint: sts.endpoint } : {}),
        refreshBeforeS: sts.refreshBeforeS,
        requestTimeoutMs: sts.requestTimeoutMs,
        maxAttempts: sts.maxAttempts,
        retryBudgetMs: sts.retryBudgetMs,
        onCall: (seconds, errorCode) => app.metrics.stsCall(seconds, errorCode),
      });
    const service = new CredentialService({
      broker,
      directory: app.directory,
      store: app.store,
      log: app.log.child({ component: 'credentials' }),
    });
    app.decorate('credentials', service);
    app.addHook('onClose', async () => service.dispose());
  },
  { name: 'credentials', dependencies: ['directory', 'metrics'] },
);
