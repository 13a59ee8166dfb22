/**
 * The seam between "who may use which role" (directory) and "how temporary AWS credentials are
 * made" (STS). `StsCredentialBroker` implements it against any STS-compatible endpoint; delivery
 * into containers and the portal's command line access only ever call `issue`.
 */
import type { StsHealthView } from '../protocol/api.js';

/** Temporary credentials exactly as STS returns them. Never logged, never written to disk. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

/** Everything AssumeRole needs for one user × account × permission set. */
export interface CredentialRequest {
  /** Immutable user id: the cache key, so one user's credentials never reach another. */
  readonly userId: string;
  /** Becomes RoleSessionName and SourceIdentity (sanitized to STS's rules) and a session tag. */
  readonly username: string;
  /** Group names, passed as a session tag. */
  readonly groups: readonly string[];
  readonly accountId: string;
  readonly accountName: string;
  readonly permissionSet: string;
  readonly roleArn: string;
  /** The permission set's session duration; capped at what the role allows. */
  readonly sessionDurationS: number;
  /** Inline session policy (JSON), if the permission set has one. */
  readonly sessionPolicy: string | null;
}

export interface IssuedCredentials {
  readonly credentials: AwsCredentials;
  /** Something the user should read, e.g. "the role allows 1 h, not 8 h: issued for 1 h". */
  readonly notice?: string;
}

export interface IssueOptions {
  /**
   * Serve from the cache only when the credentials stay valid at least this much longer (on top
   * of the broker's own refresh margin, `sts.refreshBeforeS`); else fetch new ones. Container
   * delivery asks for more than 15 min: the SDKs refetch on every call below that. A role whose
   * sessions are shorter than this still gets its freshly issued credentials.
   */
  readonly minRemainingS?: number;
}

export interface CredentialBroker {
  /**
   * Cached per (userId, accountId, permissionSet), refreshed a few minutes before expiry,
   * single-flight per key. Rejects with a CoveError whose message the user may read:
   * `COVE_ERR_CREDENTIALS_ASSUME_ROLE` (403, `could not assume role X in account Y: AccessDenied`)
   * `COVE_ERR_CREDENTIALS_NOT_CONFIGURED` (503, the server cannot use STS at all: no answer and
   * none recently, or no valid identity of its own) or `COVE_ERR_CREDENTIALS_UNAVAILABLE` (503,
   * STS throttled or failed; passes by itself).
   */
  issue(request: CredentialRequest, options?: IssueOptions): Promise<IssuedCredentials>;
  /** Drops cached credentials of these users (access removed, user disabled). */
  forget(userIds: readonly string[]): void;
  /** What the broker last saw of STS, for /readyz and the admin console. */
  health?(): StsHealthView;
}
