/**
 * The storage seam, implemented by SQLite (better-sqlite3, the embedded default) and PostgreSQL
 * (`pg`, for several Cove instances); tests/integration/server/store/store-contract.ts holds both
 * to the same cases. Every method is async and speaks in domain records, never SQL rows. Times
 * are epoch milliseconds. Failures the caller can act on are `StoreError`s (server/errors.ts):
 * `conflict` (a unique key is taken), `full` (no disk space), `unavailable` (cannot serve now);
 * anything else is a bug.
 */
export interface UserRecord {
  readonly id: string;
  readonly username: string;
  readonly email: string | null;
  readonly passwordHash: string | null;
  readonly disabled: boolean;
  readonly mustChangePassword: boolean;
  readonly mfaRequired: boolean;
  /** Base32 TOTP secret once enrolled. */
  readonly totpSecret: string | null;
  /** Secret shown during enrollment, not yet confirmed. */
  readonly totpPendingSecret: string | null;
  /** Highest TOTP time step accepted so far (replay protection). */
  readonly totpLastStep: number;
  readonly createdAt: number;
  readonly lastLoginAt: number | null;
  /**
   * Where the user comes from: `local` (Cove's own directory), or `oidc:<providerId>` for a user
   * made by (or for) that identity provider. Only such a user can be linked to the provider's
   * subject at sign-in; a local user of the same name is never merged.
   */
  readonly source: string;
}

export type SessionStage = 'mfa' | 'full';

export interface SessionRecord {
  /** SHA-256 of the cookie value: a database leak does not hand out sessions. */
  readonly idHash: string;
  readonly userId: string;
  readonly stage: SessionStage;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly mfaFailures: number;
  /** The identity provider the session signed in with; null for a password sign-in. */
  readonly providerId: string | null;
  /** The provider's ID token said MFA happened there, and the provider is trusted for it. */
  readonly mfaByIdp: boolean;
  /** The ID token, sent back as `id_token_hint` when signing out at the provider. */
  readonly idToken: string | null;
}

/** What a session is created with; the federation fields default to a password sign-in's. */
export type NewSession = Omit<SessionRecord, 'mfaFailures' | 'providerId' | 'mfaByIdp' | 'idToken'> &
  Partial<Pick<SessionRecord, 'providerId' | 'mfaByIdp' | 'idToken'>>;

/** A federated identity: the provider's subject (`sub`) bound to one Cove user. */
export interface IdentityRecord {
  readonly providerId: string;
  readonly subject: string;
  readonly userId: string;
  readonly createdAt: number;
}

/** An OpenID Connect sign-in between the redirect to the provider and its callback. */
export interface OidcLoginRecord {
  /** SHA-256 of the value in the browser's sign-in cookie. */
  readonly idHash: string;
  readonly providerId: string;
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  /** Local path to go to afterwards. */
  readonly next: string;
  readonly expiresAt: number;
}

/** Whether terminals are recorded: not, their output, or their output and what was typed. */
export type RecordMode = 'off' | 'output' | 'output+input';

export interface GroupRecord {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  /** Size of new homes for members (the largest of a user's groups wins); null: not set. */
  readonly homeSizeBytes: number | null;
  /** Shell time members may use per week (the most generous of a user's groups wins); null: unlimited. */
  readonly weeklyUsageLimitS: number | null;
  /** Members' terminals are recorded (the most thorough of a user's groups and set wins). */
  readonly record: RecordMode;
  readonly createdAt: number;
}

export interface AccountRecord {
  /** The 12-digit AWS account id is the key. */
  readonly accountId: string;
  readonly name: string;
  readonly createdAt: number;
}

export interface PermissionSetRecord {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly sessionDurationS: number;
  /** e.g. `arn:aws:iam::{accountId}:role/Cove-{name}` */
  readonly roleArnTemplate: string;
  readonly sessionPolicy: string | null;
  /** Per-account role ARN overrides. */
  readonly roleOverrides: Readonly<Record<string, string>>;
  /** Terminals opened with this set are recorded. */
  readonly record: RecordMode;
  readonly createdAt: number;
}

export type PrincipalType = 'user' | 'group';

export interface AssignmentRecord {
  readonly id: string;
  readonly principalType: PrincipalType;
  readonly principalId: string;
  readonly accountId: string;
  readonly permissionSetId: string;
  readonly createdAt: number;
}

export interface InviteRecord {
  readonly tokenHash: string;
  readonly userId: string;
  readonly expiresAt: number;
  readonly usedAt: number | null;
  readonly createdAt: number;
}

export interface AuditRecord {
  readonly id: number;
  readonly at: number;
  readonly actorId: string | null;
  readonly actorName: string | null;
  readonly action: string;
  readonly target: string | null;
  readonly details: Record<string, unknown>;
  readonly ip: string | null;
}

export type NewUser = Pick<UserRecord, 'username'> &
  Partial<Pick<UserRecord, 'email' | 'passwordHash' | 'mustChangePassword' | 'mfaRequired' | 'source'>>;

export type UserPatch = Partial<
  Pick<
    UserRecord,
    | 'email'
    | 'passwordHash'
    | 'disabled'
    | 'mustChangePassword'
    | 'mfaRequired'
    | 'totpSecret'
    | 'totpPendingSecret'
    | 'lastLoginAt'
  >
>;

export interface UserRepository {
  create(user: NewUser): Promise<UserRecord>;
  get(id: string): Promise<UserRecord | undefined>;
  getByUsername(normalizedUsername: string): Promise<UserRecord | undefined>;
  list(): Promise<UserRecord[]>;
  count(): Promise<number>;
  update(id: string, patch: UserPatch): Promise<UserRecord | undefined>;
  /**
   * Compare-and-set on the TOTP step: succeeds only if `step` is greater than the stored one,
   * so one code works once even under concurrent sign-ins.
   */
  claimTotpStep(id: string, step: number): Promise<boolean>;
  /** Resets MFA: clears secrets and the last step. */
  resetMfa(id: string): Promise<void>;
  delete(id: string): Promise<boolean>;
}

export interface SessionRepository {
  create(session: NewSession): Promise<void>;
  get(idHash: string): Promise<SessionRecord | undefined>;
  /** Atomically moves a session to a new id (rotation at every auth step). */
  rotate(
    oldIdHash: string,
    next: Pick<SessionRecord, 'idHash' | 'stage' | 'createdAt' | 'expiresAt'>,
  ): Promise<boolean>;
  incrementMfaFailures(idHash: string): Promise<number>;
  delete(idHash: string): Promise<void>;
  deleteForUser(userId: string): Promise<string[]>;
  deleteExpired(now: number): Promise<number>;
}

export interface GroupFields {
  name: string;
  description?: string;
  homeSizeBytes?: number | null;
  weeklyUsageLimitS?: number | null;
  record?: RecordMode;
}

export interface GroupRepository {
  create(group: GroupFields): Promise<GroupRecord>;
  get(id: string): Promise<GroupRecord | undefined>;
  getByName(name: string): Promise<GroupRecord | undefined>;
  list(): Promise<GroupRecord[]>;
  update(id: string, patch: Partial<GroupFields>): Promise<GroupRecord | undefined>;
  delete(id: string): Promise<boolean>;
  members(groupId: string): Promise<string[]>;
  setMembers(groupId: string, userIds: readonly string[]): Promise<void>;
  addMember(groupId: string, userId: string): Promise<void>;
  removeMember(groupId: string, userId: string): Promise<void>;
  groupsOf(userId: string): Promise<GroupRecord[]>;
}

export interface AccountRepository {
  create(account: { accountId: string; name: string }): Promise<AccountRecord>;
  get(accountId: string): Promise<AccountRecord | undefined>;
  list(): Promise<AccountRecord[]>;
  update(accountId: string, patch: { name?: string }): Promise<AccountRecord | undefined>;
  delete(accountId: string): Promise<boolean>;
}

export type NewPermissionSet = Pick<PermissionSetRecord, 'name' | 'sessionDurationS' | 'roleArnTemplate'> &
  Partial<Pick<PermissionSetRecord, 'description' | 'sessionPolicy' | 'roleOverrides' | 'record'>>;

export interface PermissionSetRepository {
  create(set: NewPermissionSet): Promise<PermissionSetRecord>;
  get(id: string): Promise<PermissionSetRecord | undefined>;
  getByName(name: string): Promise<PermissionSetRecord | undefined>;
  list(): Promise<PermissionSetRecord[]>;
  update(id: string, patch: Partial<NewPermissionSet>): Promise<PermissionSetRecord | undefined>;
  delete(id: string): Promise<boolean>;
}

export interface AssignmentRepository {
  create(a: Omit<AssignmentRecord, 'id' | 'createdAt'>): Promise<AssignmentRecord>;
  get(id: string): Promise<AssignmentRecord | undefined>;
  list(): Promise<AssignmentRecord[]>;
  delete(id: string): Promise<boolean>;
}

export interface InviteRepository {
  create(invite: Omit<InviteRecord, 'usedAt' | 'createdAt'>): Promise<void>;
  get(tokenHash: string): Promise<InviteRecord | undefined>;
  /** Marks the invite used; false when it was already used (single use under races). */
  consume(tokenHash: string, now: number): Promise<boolean>;
  deleteForUser(userId: string): Promise<void>;
  /** The user's newest unused invite, expired or not (a user has at most one live invite). */
  pendingFor(userId: string): Promise<InviteRecord | undefined>;
}

/** Shell time to add to one user's week; `weekStart` is that week's Monday 00:00 UTC (epoch ms). */
export interface UsageIncrement {
  readonly userId: string;
  readonly weekStart: number;
  readonly seconds: number;
}

export interface UsageRepository {
  /** Adds every increment in one transaction; increments for users that no longer exist are dropped. */
  add(increments: readonly UsageIncrement[]): Promise<void>;
  /** Seconds used in the week starting at `weekStart`; 0 when nothing was recorded. */
  get(userId: string, weekStart: number): Promise<number>;
  /** Deletes every week that started before `weekStart`; returns how many rows went. */
  prune(beforeWeekStart: number): Promise<number>;
}

/** A terminal that must survive a server restart (its shell lives on in a session holder). */
export interface TerminalRecord {
  readonly id: string;
  readonly ownerId: string;
  readonly region: string;
  readonly accountId?: string;
  readonly permissionSet?: string;
  readonly createdAt: number;
}

export interface TerminalRepository {
  /** Records a new terminal; the id is unique. */
  save(record: TerminalRecord): Promise<void>;
  delete(id: string): Promise<void>;
  list(): Promise<TerminalRecord[]>;
}

/**
 * How failures against one subject turn into waiting: after `allowed` failures each further one
 * blocks for `baseDelayMs`, doubling per failure up to `maxDelayMs`. Failures are forgotten once
 * `quietMs` has passed since the last one and no block is running.
 */
export interface ThrottlePolicy {
  readonly allowed: number;
  readonly quietMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * Failure counters keyed by scope (what is counted, e.g. sign-ins per account) and subject (who).
 * Every instance of a shared store counts into the same row, so concurrent failures all count.
 */
export interface ThrottleRepository {
  /**
   * Counts one failure at `now` (starting over when the earlier ones are forgotten) and returns
   * when the subject may try again: `blockedUntil` is 0 or in the past when it may try now.
   * Atomic: concurrent calls from any instance each count once.
   */
  recordFailure(
    scope: string,
    subject: string,
    now: number,
    policy: ThrottlePolicy,
  ): Promise<{ failures: number; blockedUntil: number }>;
  /** Milliseconds left to wait at `now`; 0 when the subject may try now. */
  retryAfter(scope: string, subject: string, now: number): Promise<number>;
  /** Forgets the subject's failures. */
  reset(scope: string, subject: string): Promise<void>;
  /** Deletes every entry forgotten by `now`; returns how many went. */
  prune(now: number): Promise<number>;
}

/**
 * Named leases: at most one holder at a time, until the lease expires. Instances use them so
 * that work for the whole deployment (a sweep) is done by one of them.
 */
export interface LeaseRepository {
  /**
   * Compare-and-set: takes the lease for `holder` until `now + ttlMs` when it is free, expired
   * (`expiresAt <= now`), or already `holder`'s (a renewal); false while another holder's runs.
   * Of concurrent calls for a free lease, exactly one wins.
   */
  tryAcquire(name: string, holder: string, now: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease up, if `holder` holds it, so another may take it at once. */
  release(name: string, holder: string): Promise<void>;
}

/** What a finished upload answered (the page may ask again when the answer was lost). */
export interface StagedUploadResult {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/**
 * An upload from its presigned URLs until it is completed or cancelled, so that whichever
 * instance gets the page's next request (a part, `complete`, a cancel) can take it.
 */
export interface StagedUploadRecord {
  readonly id: string;
  readonly ownerId: string;
  readonly region: string;
  /** The target folder as the user reads it (`~/data`). */
  readonly dir: string;
  readonly name: string;
  readonly size: number;
  readonly replace: boolean;
  readonly multipart: boolean;
  /** Every staged part's key starts with it. */
  readonly keyPrefix: string;
  /** In order; one for a single PUT. */
  readonly parts: readonly { readonly key: string; readonly size: number }[];
  readonly createdAt: number;
  /** An instance is completing it now. */
  readonly completing: boolean;
  readonly finishedAt: number | null;
  readonly result: StagedUploadResult | null;
}

export type NewStagedUpload = Omit<StagedUploadRecord, 'completing' | 'finishedAt' | 'result'>;

export interface UploadRepository {
  save(upload: NewStagedUpload): Promise<void>;
  get(id: string): Promise<StagedUploadRecord | undefined>;
  /** The owner's uploads not finished yet, oldest first. */
  pendingFor(ownerId: string): Promise<StagedUploadRecord[]>;
  /** Compare-and-set: marks it being completed; false when it already is, has finished, or is gone. */
  claim(id: string): Promise<boolean>;
  /** Ends a claim without finishing: `complete` may be tried again. */
  unclaim(id: string): Promise<void>;
  /** Records the answer; the upload stops being pending and stays only for a repeated `complete`. */
  finish(id: string, result: StagedUploadResult, at: number): Promise<void>;
  /** Removes it (cancelled, failed for good); false when it was not there. */
  delete(id: string): Promise<boolean>;
  /**
   * Deletes unfinished uploads created before `createdBefore` (abandoned) and finished ones
   * finished before `finishedBefore`; returns how many went.
   */
  prune(createdBefore: number, finishedBefore: number): Promise<number>;
}

export interface IdentityRepository {
  /** Binds (provider, subject) to a user; false when that pair is already bound. */
  link(identity: Omit<IdentityRecord, 'createdAt'>): Promise<boolean>;
  get(providerId: string, subject: string): Promise<IdentityRecord | undefined>;
  listFor(userId: string): Promise<IdentityRecord[]>;
}

export interface OidcLoginRepository {
  create(login: OidcLoginRecord): Promise<void>;
  /**
   * Deletes and returns the sign-in if it exists and has not expired: each one completes at
   * most once, even when two callbacks race.
   */
  take(idHash: string, now: number): Promise<OidcLoginRecord | undefined>;
  deleteExpired(now: number): Promise<number>;
}

/** One recorded terminal session; the file itself is in `storage` at `location`. */
export interface RecordingRecord {
  readonly id: string;
  readonly terminalId: string;
  readonly userId: string;
  /** As it was when recording started: the record outlives a renamed or deleted user. */
  readonly username: string;
  readonly region: string;
  readonly accountId: string | null;
  readonly permissionSet: string | null;
  readonly mode: Exclude<RecordMode, 'off'>;
  readonly startedAt: number;
  /** Null while the terminal is open (or when the server stopped before it could say). */
  readonly endedAt: number | null;
  readonly bytes: number;
  /** False when events were dropped (disk full, too slow) or the size bound cut it. */
  readonly complete: boolean;
  /** `file`: under the data directory; the location is the file's name there. */
  readonly storage: 'file';
  readonly location: string;
}

export type NewRecording = Omit<RecordingRecord, 'endedAt' | 'bytes' | 'complete'>;

/** Who, when and which identity: every field narrows; newest first. */
export interface RecordingQuery {
  readonly userId?: string;
  readonly accountId?: string;
  readonly permissionSet?: string;
  /** Started at or after (epoch ms). */
  readonly from?: number;
  /** Started before (epoch ms). */
  readonly to?: number;
  /** 1 to 500, 100 unless asked. */
  readonly limit?: number;
}

export interface RecordingRepository {
  create(recording: NewRecording): Promise<void>;
  /** Records the end; false when there is no such recording. */
  finish(id: string, end: { endedAt: number; bytes: number; complete: boolean }): Promise<boolean>;
  get(id: string): Promise<RecordingRecord | undefined>;
  search(query: RecordingQuery): Promise<RecordingRecord[]>;
  /** Recordings started before `startedBefore`, oldest first, at most `limit` (the retention sweep). */
  startedBefore(startedBefore: number, limit: number): Promise<RecordingRecord[]>;
  delete(id: string): Promise<boolean>;
}

/**
 * A client the AWS CLI or an SDK registered through SSO OIDC `RegisterClient`; its secret proves
 * later calls come from the same install.
 */
export interface SsoClientRecord {
  readonly clientId: string;
  /** SHA-256 of the client secret. */
  readonly secretHash: string;
  readonly name: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export type SsoGrantKind = 'device' | 'code';
export type SsoGrantStatus = 'pending' | 'approved' | 'denied';

/**
 * A sign-in the CLI asked for and a person answers on Cove's "Authorize request" page: a device
 * authorization (the CLI polls with its device code) or an authorization code request (the
 * browser goes back to the CLI's loopback address with a code).
 */
export interface SsoGrantRecord {
  /** SHA-256 of the device code, or of the authorization code once approved. */
  readonly codeHash: string;
  readonly kind: SsoGrantKind;
  readonly clientId: string;
  /** What the person sees and confirms on the page; unique among grants. */
  readonly userCode: string;
  readonly status: SsoGrantStatus;
  /** Who answered. */
  readonly userId: string | null;
  /** Authorization code requests: the loopback address, the client's `state`, the PKCE S256 challenge. */
  readonly redirectUri: string | null;
  readonly state: string | null;
  readonly codeChallenge: string | null;
  readonly lastPolledAt: number | null;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export type NewSsoGrant = Omit<SsoGrantRecord, 'status' | 'userId' | 'lastPolledAt'>;

export type SsoTokenKind = 'access' | 'refresh';

/** An access or refresh token the CLI holds; only its hash is stored. */
export interface SsoTokenRecord {
  /** SHA-256 of the token. */
  readonly tokenHash: string;
  readonly kind: SsoTokenKind;
  /** Tokens from one sign-in and every refresh after it: Logout ends them together. */
  readonly familyId: string;
  readonly clientId: string;
  readonly userId: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface SsoClientRepository {
  create(client: SsoClientRecord): Promise<void>;
  get(clientId: string): Promise<SsoClientRecord | undefined>;
  deleteExpired(now: number): Promise<number>;
}

export interface SsoGrantRepository {
  /** Fails with `conflict` when the user code is taken. */
  create(grant: NewSsoGrant): Promise<void>;
  get(codeHash: string): Promise<SsoGrantRecord | undefined>;
  getByUserCode(userCode: string): Promise<SsoGrantRecord | undefined>;
  /**
   * Compare-and-set: records the person's answer on a pending grant that has not expired at
   * `now`; `codeHash` and `expiresAt` replace the stored ones when given (an approved code
   * request gets its authorization code). False when it was answered already, expired or gone.
   */
  decide(
    userCode: string,
    answer: { userId: string; status: 'approved' | 'denied'; codeHash?: string; expiresAt?: number },
    now: number,
  ): Promise<boolean>;
  /**
   * Compare-and-set on the polling clock: records a poll at `now` and answers true when the
   * previous one was at least `minIntervalMs` ago (or there was none); false when too soon or gone.
   */
  recordPoll(codeHash: string, now: number, minIntervalMs: number): Promise<boolean>;
  /** Deletes and returns the grant when it has not expired: each one is redeemed at most once. */
  take(codeHash: string, now: number): Promise<SsoGrantRecord | undefined>;
  deleteExpired(now: number): Promise<number>;
}

export interface SsoTokenRepository {
  create(tokens: readonly SsoTokenRecord[]): Promise<void>;
  get(tokenHash: string): Promise<SsoTokenRecord | undefined>;
  /** Deletes and returns the token when it has not expired: a refresh token works once. */
  take(tokenHash: string, now: number): Promise<SsoTokenRecord | undefined>;
  deleteFamily(familyId: string): Promise<number>;
  deleteForUser(userId: string): Promise<number>;
  deleteExpired(now: number): Promise<number>;
}

/**
 * A bearer token of one SCIM client (an IdP's provisioning connector). Only its SHA-256 is kept:
 * the value is shown once when it is made. Users it provisions sign in through `providerId`.
 */
export interface ScimTokenRecord {
  readonly id: string;
  readonly name: string;
  readonly tokenHash: string;
  /** The configured OpenID provider (`auth.oidc` id) its users sign in with. */
  readonly providerId: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly revokedAt: number | null;
}

export interface ScimTokenRepository {
  create(token: Pick<ScimTokenRecord, 'name' | 'tokenHash' | 'providerId'>): Promise<ScimTokenRecord>;
  get(id: string): Promise<ScimTokenRecord | undefined>;
  getByHash(tokenHash: string): Promise<ScimTokenRecord | undefined>;
  /** Oldest first, revoked ones included. */
  list(): Promise<ScimTokenRecord[]>;
  /** Marks it revoked at `at`; false when it does not exist or was already revoked. */
  revoke(id: string, at: number): Promise<boolean>;
  /** Records a use; a revoked token's record is left as it is. */
  touch(id: string, at: number): Promise<void>;
}

export type ScimResourceKind = 'user' | 'group';

/**
 * What SCIM knows about a Cove user or group it provisioned: the client's `externalId`, which
 * provider's clients manage it, which token wrote it last, and SCIM's `meta` times.
 */
export interface ScimResourceRecord {
  readonly kind: ScimResourceKind;
  /** The Cove user's or group's id (also its SCIM `id`). */
  readonly resourceId: string;
  readonly providerId: string;
  readonly externalId: string | null;
  readonly tokenId: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface ScimResourceRepository {
  /** Inserts or updates (keeping `createdAt`) the record of one resource, stamped `at`. */
  save(
    resource: Pick<ScimResourceRecord, 'kind' | 'resourceId' | 'providerId' | 'externalId' | 'tokenId'>,
    at: number,
  ): Promise<ScimResourceRecord>;
  get(kind: ScimResourceKind, resourceId: string): Promise<ScimResourceRecord | undefined>;
  /** Every record of that kind managed through `providerId`'s clients, by resource id. */
  list(kind: ScimResourceKind, providerId: string): Promise<ScimResourceRecord[]>;
  delete(kind: ScimResourceKind, resourceId: string): Promise<boolean>;
}

export interface AuditLog {
  append(entry: Omit<AuditRecord, 'id' | 'at'> & { at?: number }): Promise<void>;
  list(query?: { limit?: number; beforeId?: number; action?: string }): Promise<AuditRecord[]>;
}

/** Every repository: what the store offers, and what a transaction's handle offers. */
export interface StoreRepositories {
  readonly users: UserRepository;
  readonly sessions: SessionRepository;
  readonly groups: GroupRepository;
  readonly accounts: AccountRepository;
  readonly permissionSets: PermissionSetRepository;
  readonly assignments: AssignmentRepository;
  readonly invites: InviteRepository;
  readonly usage: UsageRepository;
  readonly terminals: TerminalRepository;
  readonly throttles: ThrottleRepository;
  readonly leases: LeaseRepository;
  readonly uploads: UploadRepository;
  readonly identities: IdentityRepository;
  readonly oidcLogins: OidcLoginRepository;
  readonly recordings: RecordingRepository;
  readonly ssoClients: SsoClientRepository;
  readonly ssoGrants: SsoGrantRepository;
  readonly ssoTokens: SsoTokenRepository;
  readonly scimTokens: ScimTokenRepository;
  readonly scimResources: ScimResourceRepository;
  readonly audit: AuditLog;
}

export interface Store extends StoreRepositories {
  /**
   * Runs `fn` in one transaction: all of `tx`'s statements commit together or none do. Only
   * statements made through `tx` belong to it: other requests' statements never join it, nor
   * see its writes before the commit. Inside `fn`, use `tx` and never the store itself (that
   * throws: it would wait for this very transaction). `tx` stops working when `fn` settles.
   */
  transaction<T>(fn: (tx: StoreRepositories) => Promise<T>): Promise<T>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
