/**
 * `CredentialBroker` over STS `AssumeRole` (`@aws-sdk/client-sts`), against AWS or any
 * STS-compatible endpoint. The server's own credentials come from the SDK's default chain
 * (environment, profile, instance/container role) unless a provider is passed in.
 *
 * - Cache per (user id, account, permission set); served while the credentials have more than
 *   `max(refreshBeforeS, minRemainingS)` left, else fetched again. Concurrent calls for one key
 *   share one STS request. `forget` also discards requests in flight, so credentials fetched
 *   for a user whose access was just removed are never cached.
 * - Retries: Throttling, 5xx, timeouts and network errors, with exponential backoff and full
 *   jitter, at most `maxAttempts` attempts within `retryBudgetMs`; each attempt is cut off after
 *   `requestTimeoutMs` (a blackholed STS fails fast). The SDK's own retries are off so these are
 *   the only ones.
 * - A role whose MaxSessionDuration is shorter than the permission set's duration: STS answers
 *   ValidationError; the broker asks once more for 1 h and returns a `notice` saying so.
 * - Errors: STS refusals (AccessDenied, ...) → `COVE_ERR_CREDENTIALS_ASSUME_ROLE` naming the role's
 *   name, the account and the AWS code only; no identity of the server's own, STS refusing it, or
 *   no answer at all while STS has not answered for `answeredRecentlyMs` →
 *   `COVE_ERR_CREDENTIALS_NOT_CONFIGURED` (a configuration problem: no retry hint); everything
 *   else (throttling, 5xx, a blip after recent answers) → `COVE_ERR_CREDENTIALS_UNAVAILABLE`.
 *   STS's own messages (which name the server's ARN) stay in the error's cause, for the log.
 * - `health()`: what the last request saw (ok, unreachable, no identity, failing) and what the
 *   administrator should do, for /readyz and the admin console. Never a probe of its own.
 */
import {
  AssumeRoleCommand,
  STSClient,
  type AssumeRoleCommandOutput,
  type STSClientConfig,
} from '@aws-sdk/client-sts';
import type { CoveError } from '../errors.js';
import { errors } from '../errors.js';
import type { StsHealthView, StsStatus } from '../protocol/api.js';
import type {
  AwsCredentials,
  CredentialBroker,
  CredentialRequest,
  IssueOptions,
  IssuedCredentials,
} from './credential-broker.js';
import { stsGroupsTag, stsSessionName, stsTagValue } from './sts-session-names.js';

/** What the broker needs of an STS client; tests pass a fake. */
export interface StsClientLike {
  send(command: AssumeRoleCommand, options?: { abortSignal?: AbortSignal }): Promise<AssumeRoleCommandOutput>;
}

export interface StsCredentialBrokerOptions {
  /** STS region (also the signing region). */
  readonly region: string;
  /** Endpoint override, e.g. a local STS; absent = the SDK's default for the region. */
  readonly endpoint?: string;
  /** The server's own credentials; absent = the SDK's default chain. */
  readonly credentials?: STSClientConfig['credentials'];
  /** Use this client instead of building one (unit tests). */
  readonly client?: StsClientLike;
  /** Fetch again when less than this is left (default 300 s). */
  readonly refreshBeforeS?: number;
  /** Cut one STS request off after this long (default 3000 ms). */
  readonly requestTimeoutMs?: number;
  /** Attempts per issue, counting the first (default 4). */
  readonly maxAttempts?: number;
  /** No new attempt starts after this long since the first (default 8000 ms). */
  readonly retryBudgetMs?: number;
  /** First backoff ceiling; doubles per retry (default 200 ms), capped at `maxBackoffMs`. */
  readonly baseBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Replaceable in tests: the clock, the sleep between retries and the jitter source. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  /** Told about every STS request once it ends: how long it took, and its error code if it failed. */
  readonly onCall?: (seconds: number, errorCode?: string) => void;
}

/** What the permission set asks for when its role allows less. */
const fallbackDurationS = 3600;
/** STS codes that mean "try again later", besides any 5xx. */
const retryableCodes = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestTimeout',
  'RequestTimeoutException',
  'IDPCommunicationError',
]);
/** STS codes that mean "this role, for this request, is refused": the user's administrator can act. */
const refusalCodes = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'RegionDisabledException',
  'MalformedPolicyDocument',
  'PackedPolicyTooLarge',
  'ValidationError',
]);
/** STS codes that refuse the server's own credentials: the administrator must give it others. */
const identityCodes = new Set([
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'ExpiredToken',
  'ExpiredTokenException',
  'UnrecognizedClientException',
  'MissingAuthenticationToken',
  'InvalidAccessKeyId',
]);
/**
 * No answer at all after STS answered within this long is a blip ("try again"); without a recent
 * answer it is an install that cannot reach STS ("not set up here").
 */
const answeredRecentlyMs = 10 * 60_000;

interface CacheEntry {
  /** Everything sent to STS; a changed permission set (policy, role, duration) is a miss. */
  readonly fingerprint: string;
  readonly issued: IssuedCredentials;
}

interface InFlight {
  readonly fingerprint: string;
  readonly promise: Promise<IssuedCredentials>;
}

interface StsFailure {
  readonly code: string;
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly message: string;
}

/** Reads what matters from an SDK error (service exception, network error, abort). */
function classify(error: unknown): StsFailure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode;
  const named = typeof e.name === 'string' && e.name !== 'Error' ? e.name : String(e.code ?? 'Error');
  // The broker's own cut-off: the administrator reads "Timeout", not the SDK's abort plumbing.
  const code = named === 'AbortError' || named === 'TimeoutError' ? 'Timeout' : named;
  const message = typeof e.message === 'string' ? e.message : String(error);
  if (code === 'CredentialsProviderError') return { code, status, retryable: false, message };
  const retryable =
    retryableCodes.has(code) ||
    (status !== undefined && status >= 500) ||
    // No HTTP status: the request never got an answer (refused, reset, timed out, aborted).
    status === undefined;
  return { code, status, retryable, message };
}

const isIdentityFailure = (f: StsFailure): boolean =>
  f.code === 'CredentialsProviderError' || identityCodes.has(f.code);

/** The endpoint as the administrator configured it (no user-info), or AWS's for the region. */
export function stsEndpointLabel(region: string, endpoint?: string): string {
  if (!endpoint) return `AWS STS for ${region} (https://sts.${region}.amazonaws.com)`;
  try {
    const url = new URL(endpoint);
    return `${url.origin}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return 'the configured sts.endpoint';
  }
}

/** What to configure, in the administrator's words, for a status that needs it. */
function actionFor(status: StsStatus, code: string, endpoint: string): string | undefined {
  switch (status) {
    case 'unreachable':
      return (
        `Cove gets no answer from ${endpoint} (${code}). Let this server reach it (firewall, proxy, DNS), ` +
        'or set sts.endpoint (COVE_STS_ENDPOINT) to an STS endpoint it can reach, such as a VPC endpoint.'
      );
    case 'no-identity':
      return code === 'CredentialsProviderError'
        ? 'Cove has no AWS credentials of its own to call STS with. Give the server an identity through the ' +
            "AWS SDK's default chain: an instance or task role, AWS_PROFILE, or AWS_ACCESS_KEY_ID and " +
            'AWS_SECRET_ACCESS_KEY in its environment.'
        : `${endpoint} refuses this server's own AWS credentials (${code}). Give the server valid ` +
            'credentials: an instance or task role, AWS_PROFILE, or access keys in its environment.';
    case 'failing':
      return (
        `${endpoint} answers with errors (${code}); users are asked to try again. If it lasts, ` +
        "check STS's health and how many credentials this server asks for."
      );
    default:
      return undefined;
  }
}

const isDurationRefusal = (f: StsFailure): boolean =>
  f.code === 'ValidationError' && /DurationSeconds|MaxSessionDuration/i.test(f.message);

/** The role's name from its ARN (`arn:aws:iam::123:role/path/Name` → `Name`). */
export function roleNameOf(roleArn: string): string {
  const resource = roleArn.split(':').slice(5).join(':');
  return resource.split('/').pop() || resource || 'the role';
}

/** "8 h", "1 h", "90 min". */
function hoursText(seconds: number): string {
  return seconds % 3600 === 0 ? `${seconds / 3600} h` : `${Math.round(seconds / 60)} min`;
}

export class StsCredentialBroker implements CredentialBroker {
  private readonly client: StsClientLike;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, InFlight>();
  /** Bumped by `forget`, so a request started before it does not fill the cache after it. */
  private readonly generations = new Map<string, number>();
  private readonly refreshBeforeS: number;
  private readonly requestTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly retryBudgetMs: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly onCall: (seconds: number, errorCode?: string) => void;
  private lastSweepMs = 0;
  private readonly endpointLabel: string;
  /** What the last request that ended saw, and since when. */
  private seen: { status: StsStatus; sinceMs: number; code?: string } = { status: 'unknown', sinceMs: 0 };
  /** The last time STS answered anything (credentials or a refusal): it is reachable. */
  private lastAnsweredMs: number | undefined;

  constructor(options: StsCredentialBrokerOptions) {
    this.endpointLabel = stsEndpointLabel(options.region, options.endpoint);
    this.client =
      options.client ??
      new STSClient({
        region: options.region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
        maxAttempts: 1,
      });
    this.refreshBeforeS = options.refreshBeforeS ?? 300;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 3000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.retryBudgetMs = options.retryBudgetMs ?? 8000;
    this.baseBackoffMs = options.baseBackoffMs ?? 200;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
    this.onCall = options.onCall ?? (() => {});
  }

  async issue(request: CredentialRequest, options: IssueOptions = {}): Promise<IssuedCredentials> {
    const key = [request.userId, request.accountId, request.permissionSet.toLowerCase()].join('\u0000');
    const fingerprint = JSON.stringify([
      request.roleArn,
      request.sessionDurationS,
      request.sessionPolicy,
      request.username,
      request.groups,
    ]);
    const minRemainingMs = Math.max(this.refreshBeforeS, options.minRemainingS ?? 0) * 1000;
    this.sweep();

    const cached = this.cache.get(key);
    if (
      cached?.fingerprint === fingerprint &&
      cached.issued.credentials.expiration.getTime() - this.now() > minRemainingMs
    )
      return cached.issued;

    const running = this.inFlight.get(key);
    if (running?.fingerprint === fingerprint) return running.promise;

    const generation = this.generations.get(request.userId) ?? 0;
    const promise = this.assumeRole(request).then((issued) => {
      if ((this.generations.get(request.userId) ?? 0) === generation)
        this.cache.set(key, { fingerprint, issued });
      return issued;
    });
    const entry = { fingerprint, promise };
    this.inFlight.set(key, entry);
    const settle = (): void => {
      if (this.inFlight.get(key) === entry) this.inFlight.delete(key);
    };
    promise.then(settle, settle);
    return promise;
  }

  health(): StsHealthView {
    const { status, sinceMs, code } = this.seen;
    const action = code === undefined ? undefined : actionFor(status, code, this.endpointLabel);
    return {
      status,
      endpoint: this.endpointLabel,
      ...(status === 'unknown' ? {} : { since: new Date(sinceMs).toISOString() }),
      ...(code === undefined || status === 'ok' ? {} : { lastError: code }),
      ...(action ? { action } : {}),
    };
  }

  private observe(status: StsStatus, code?: string): void {
    if (status !== this.seen.status) this.seen = { status, sinceMs: this.now() };
    this.seen = { status, sinceMs: this.seen.sinceMs, ...(code === undefined ? {} : { code }) };
  }

  forget(userIds: readonly string[]): void {
    const users = new Set(userIds);
    for (const userId of users) this.generations.set(userId, (this.generations.get(userId) ?? 0) + 1);
    const owner = (key: string): string => key.slice(0, key.indexOf('\u0000'));
    for (const key of [...this.cache.keys()]) if (users.has(owner(key))) this.cache.delete(key);
    for (const key of [...this.inFlight.keys()]) if (users.has(owner(key))) this.inFlight.delete(key);
  }

  /** Drops expired entries now and then, so users who left do not keep memory forever. */
  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweepMs < 60_000) return;
    this.lastSweepMs = now;
    for (const [key, entry] of this.cache)
      if (entry.issued.credentials.expiration.getTime() <= now) this.cache.delete(key);
  }

  private async assumeRole(request: CredentialRequest): Promise<IssuedCredentials> {
    const roleName = roleNameOf(request.roleArn);
    try {
      return { credentials: await this.withRetries(request, request.sessionDurationS) };
    } catch (error) {
      if (!(error instanceof StsAttemptsFailed) || !isDurationRefusal(error.failure))
        throw this.toCove(error, request);
      if (request.sessionDurationS <= fallbackDurationS) throw this.toCove(error, request);
    }
    try {
      const credentials = await this.withRetries(request, fallbackDurationS);
      return {
        credentials,
        notice:
          `The role ${roleName} in account ${request.accountId} allows at most ${hoursText(fallbackDurationS)}: ` +
          `these credentials last ${hoursText(fallbackDurationS)}, not ${hoursText(request.sessionDurationS)}.`,
      };
    } catch (error) {
      throw this.toCove(error, request);
    }
  }

  private toCove(error: unknown, request: CredentialRequest): CoveError {
    if (!(error instanceof StsAttemptsFailed)) return errors.credentialsUnavailable(error);
    const { failure } = error;
    const cause = new Error(
      `STS AssumeRole ${request.roleArn} failed after ${error.attempts} attempt(s): ${failure.code}` +
        `${failure.status ? ` (HTTP ${failure.status})` : ''}: ${failure.message}`,
    );
    if (!failure.retryable && refusalCodes.has(failure.code))
      return errors.credentialsAssumeRole(
        roleNameOf(request.roleArn),
        request.accountId,
        failure.code,
        cause,
      );
    if (isIdentityFailure(failure)) return errors.credentialsNotConfigured(cause);
    const answeredRecently =
      this.lastAnsweredMs !== undefined && this.now() - this.lastAnsweredMs < answeredRecentlyMs;
    if (failure.status === undefined && !answeredRecently) return errors.credentialsNotConfigured(cause);
    return errors.credentialsUnavailable(cause);
  }

  private async withRetries(request: CredentialRequest, durationS: number): Promise<AwsCredentials> {
    const started = this.now();
    const sessionName = stsSessionName(request.username);
    const groups = stsGroupsTag(request.groups);
    const command = new AssumeRoleCommand({
      RoleArn: request.roleArn,
      RoleSessionName: sessionName,
      SourceIdentity: sessionName,
      DurationSeconds: durationS,
      ...(request.sessionPolicy ? { Policy: request.sessionPolicy } : {}),
      Tags: [
        { Key: 'cove:user', Value: stsTagValue(request.username) },
        ...(groups ? [{ Key: 'cove:groups', Value: groups }] : []),
      ],
    });
    for (let attempt = 1; ; attempt++) {
      const remainingMs = this.retryBudgetMs - (this.now() - started);
      const timeout = AbortSignal.timeout(Math.max(1, Math.min(this.requestTimeoutMs, remainingMs)));
      // Real time, not the injectable clock: this is what the request cost.
      const sent = performance.now();
      try {
        const output = await this.client.send(command, { abortSignal: timeout });
        this.lastAnsweredMs = this.now();
        const credentials = toCredentials(output);
        this.onCall((performance.now() - sent) / 1000);
        this.observe('ok');
        return credentials;
      } catch (error) {
        const failure = classify(error);
        this.onCall((performance.now() - sent) / 1000, failure.code);
        if (failure.status !== undefined) this.lastAnsweredMs = this.now();
        const backoffMs =
          this.random() * Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** (attempt - 1));
        const budgetLeft = this.retryBudgetMs - (this.now() - started) - backoffMs;
        if (!failure.retryable || attempt >= this.maxAttempts || budgetLeft <= 0) {
          this.observe(statusOf(failure), failure.code);
          throw new StsAttemptsFailed(failure, attempt);
        }
        await this.sleep(backoffMs);
      }
    }
  }
}

/** What a final failure says about STS itself (a refused role says STS works). */
function statusOf(failure: StsFailure): StsStatus {
  if (isIdentityFailure(failure)) return 'no-identity';
  if (failure.status === undefined) return 'unreachable';
  if (failure.retryable) return 'failing';
  return 'ok';
}

/** The last failure after the broker gave up; internal, turned into a CoveError. */
class StsAttemptsFailed extends Error {
  constructor(
    readonly failure: StsFailure,
    readonly attempts: number,
  ) {
    super(`${failure.code} after ${attempts} attempt(s)`);
    this.name = 'StsAttemptsFailed';
  }
}

function toCredentials(output: AssumeRoleCommandOutput): AwsCredentials {
  const c = output.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration)
    throw Object.assign(new Error('STS answered without credentials'), {
      name: 'IncompleteResponse',
      $metadata: { httpStatusCode: 502 },
    });
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
    expiration: new Date(c.Expiration),
  };
}
