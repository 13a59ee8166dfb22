/**
 * Rows to domain records, for both engines: SQLite gives flags as 0/1, PostgreSQL as booleans;
 * both give times as numbers (PostgresStore parses BIGINT into one).
 */
import type {
  AccountRecord,
  AssignmentRecord,
  AuditRecord,
  GroupRecord,
  IdentityRecord,
  InviteRecord,
  OidcLoginRecord,
  PermissionSetRecord,
  RecordingQuery,
  RecordingRecord,
  RecordMode,
  ScimResourceRecord,
  ScimTokenRecord,
  SessionRecord,
  SsoClientRecord,
  SsoGrantKind,
  SsoGrantRecord,
  SsoGrantStatus,
  SsoTokenKind,
  SsoTokenRecord,
  StagedUploadRecord,
  TerminalRecord,
  ThrottlePolicy,
  UserPatch,
  UserRecord,
} from './store.js';

export type Row = Record<string, unknown>;

const flag = (v: unknown): boolean => v === 1 || v === true;

export const toUser = (r: Row): UserRecord => ({
  id: r.id as string,
  username: r.username as string,
  email: (r.email as string | null) ?? null,
  passwordHash: (r.password_hash as string | null) ?? null,
  disabled: flag(r.disabled),
  mustChangePassword: flag(r.must_change_password),
  mfaRequired: flag(r.mfa_required),
  totpSecret: (r.totp_secret as string | null) ?? null,
  totpPendingSecret: (r.totp_pending_secret as string | null) ?? null,
  totpLastStep: r.totp_last_step as number,
  createdAt: r.created_at as number,
  lastLoginAt: (r.last_login_at as number | null) ?? null,
  source: r.source as string,
});

export const toSession = (r: Row): SessionRecord => ({
  idHash: r.id_hash as string,
  userId: r.user_id as string,
  stage: r.stage as SessionRecord['stage'],
  createdAt: r.created_at as number,
  expiresAt: r.expires_at as number,
  mfaFailures: r.mfa_failures as number,
  providerId: (r.provider_id as string | null) ?? null,
  mfaByIdp: flag(r.mfa_by_idp),
  idToken: (r.id_token as string | null) ?? null,
});

export const toIdentity = (r: Row): IdentityRecord => ({
  providerId: r.provider_id as string,
  subject: r.subject as string,
  userId: r.user_id as string,
  createdAt: r.created_at as number,
});

export const toScimToken = (r: Row): ScimTokenRecord => ({
  id: r.id as string,
  name: r.name as string,
  tokenHash: r.token_hash as string,
  providerId: r.provider_id as string,
  createdAt: r.created_at as number,
  lastUsedAt: (r.last_used_at as number | null) ?? null,
  revokedAt: (r.revoked_at as number | null) ?? null,
});

export const toScimResource = (r: Row): ScimResourceRecord => ({
  kind: r.kind as ScimResourceRecord['kind'],
  resourceId: r.resource_id as string,
  providerId: r.provider_id as string,
  externalId: (r.external_id as string | null) ?? null,
  tokenId: r.token_id as string,
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
});

export const toOidcLogin = (r: Row): OidcLoginRecord => ({
  idHash: r.id_hash as string,
  providerId: r.provider_id as string,
  state: r.state as string,
  nonce: r.nonce as string,
  codeVerifier: r.code_verifier as string,
  next: r.next as string,
  expiresAt: r.expires_at as number,
});

export const toGroup = (r: Row): GroupRecord => ({
  id: r.id as string,
  name: r.name as string,
  description: r.description as string,
  homeSizeBytes: (r.home_size_bytes as number | null) ?? null,
  weeklyUsageLimitS: (r.weekly_usage_limit_s as number | null) ?? null,
  record: r.record as RecordMode,
  createdAt: r.created_at as number,
});

export const toAccount = (r: Row): AccountRecord => ({
  accountId: r.account_id as string,
  name: r.name as string,
  createdAt: r.created_at as number,
});

export const toPermissionSet = (r: Row): PermissionSetRecord => ({
  id: r.id as string,
  name: r.name as string,
  description: r.description as string,
  sessionDurationS: r.session_duration_s as number,
  roleArnTemplate: r.role_arn_template as string,
  sessionPolicy: (r.session_policy as string | null) ?? null,
  roleOverrides: JSON.parse(r.role_overrides as string) as Record<string, string>,
  record: r.record as RecordMode,
  createdAt: r.created_at as number,
});

export const toRecording = (r: Row): RecordingRecord => ({
  id: r.id as string,
  terminalId: r.terminal_id as string,
  userId: r.user_id as string,
  username: r.username as string,
  region: r.region as string,
  accountId: (r.account_id as string | null) ?? null,
  permissionSet: (r.permission_set as string | null) ?? null,
  mode: r.mode as RecordingRecord['mode'],
  startedAt: r.started_at as number,
  endedAt: (r.ended_at as number | null) ?? null,
  bytes: r.bytes as number,
  complete: flag(r.complete),
  storage: r.storage as RecordingRecord['storage'],
  location: r.location as string,
});

/** A recording search's page holds 1 to 500 entries, 100 unless asked. */
export const recordingPageSize = (limit: number | undefined): number =>
  Math.min(Math.max(limit ?? 100, 1), 500);

/**
 * A recording search's WHERE clause over its set fields, with `?` placeholders (PostgreSQL
 * numbers them) and the values in order.
 */
export function recordingFilter(query: RecordingQuery): { where: string; values: unknown[] } {
  const parts: [string, unknown][] = [
    ['user_id = ?', query.userId],
    ['account_id = ?', query.accountId],
    ['permission_set = ?', query.permissionSet],
    ['started_at >= ?', query.from],
    ['started_at < ?', query.to],
  ];
  const set = parts.filter(([, v]) => v !== undefined);
  return {
    where: set.length > 0 ? `WHERE ${set.map(([sql]) => sql).join(' AND ')}` : '',
    values: set.map(([, v]) => v),
  };
}

export const toAssignment = (r: Row): AssignmentRecord => ({
  id: r.id as string,
  principalType: r.principal_type as AssignmentRecord['principalType'],
  principalId: r.principal_id as string,
  accountId: r.account_id as string,
  permissionSetId: r.permission_set_id as string,
  createdAt: r.created_at as number,
});

export const toInvite = (r: Row): InviteRecord => ({
  tokenHash: r.token_hash as string,
  userId: r.user_id as string,
  expiresAt: r.expires_at as number,
  usedAt: (r.used_at as number | null) ?? null,
  createdAt: r.created_at as number,
});

export const toTerminal = (r: Row): TerminalRecord => ({
  id: r.id as string,
  ownerId: r.owner_id as string,
  region: r.region as string,
  ...(r.account_id ? { accountId: r.account_id as string } : {}),
  ...(r.permission_set ? { permissionSet: r.permission_set as string } : {}),
  createdAt: r.created_at as number,
});

export const toStagedUpload = (r: Row): StagedUploadRecord => ({
  id: r.id as string,
  ownerId: r.owner_id as string,
  region: r.region as string,
  dir: r.dir as string,
  name: r.name as string,
  size: r.size as number,
  replace: flag(r.replace_existing),
  multipart: flag(r.multipart),
  keyPrefix: r.key_prefix as string,
  parts: JSON.parse(r.parts as string) as StagedUploadRecord['parts'],
  createdAt: r.created_at as number,
  completing: flag(r.completing),
  finishedAt: (r.finished_at as number | null) ?? null,
  result:
    r.result === null || r.result === undefined
      ? null
      : (JSON.parse(r.result as string) as StagedUploadRecord['result']),
});

export const toAudit = (r: Row): AuditRecord => ({
  id: r.id as number,
  at: r.at as number,
  actorId: (r.actor_id as string | null) ?? null,
  actorName: (r.actor_name as string | null) ?? null,
  action: r.action as string,
  target: (r.target as string | null) ?? null,
  details: JSON.parse(r.details as string) as Record<string, unknown>,
  ip: (r.ip as string | null) ?? null,
});

export const userColumns: Record<keyof UserPatch, string> = {
  email: 'email',
  passwordHash: 'password_hash',
  disabled: 'disabled',
  mustChangePassword: 'must_change_password',
  mfaRequired: 'mfa_required',
  totpSecret: 'totp_secret',
  totpPendingSecret: 'totp_pending_secret',
  lastLoginAt: 'last_login_at',
};

/** The patch's set fields as [column, value] pairs, in a stable order. */
export function userPatchColumns(patch: UserPatch): [string, unknown][] {
  return Object.entries(patch)
    .filter(([k, v]) => v !== undefined && k in userColumns)
    .map(([k, v]) => [userColumns[k as keyof UserPatch], v]);
}

/** The permission-set patch's set fields as [column, value] pairs (overrides as JSON text). */
export function permissionSetColumns(patch: {
  name?: string;
  description?: string;
  sessionDurationS?: number;
  roleArnTemplate?: string;
  sessionPolicy?: string | null;
  roleOverrides?: Readonly<Record<string, string>>;
  record?: RecordMode;
}): [string, unknown][] {
  const columns: [string, unknown][] = [
    ['name', patch.name],
    ['description', patch.description],
    ['session_duration_s', patch.sessionDurationS],
    ['role_arn_template', patch.roleArnTemplate],
    ['session_policy', patch.sessionPolicy],
    ['role_overrides', patch.roleOverrides === undefined ? undefined : JSON.stringify(patch.roleOverrides)],
    ['record', patch.record],
  ];
  return columns.filter(([, v]) => v !== undefined);
}

/** An audit page holds 1 to 1000 entries, 100 unless asked. */
export const auditPageSize = (limit: number | undefined): number => Math.min(Math.max(limit ?? 100, 1), 1000);

/** Capped exponent: past ~30 doublings every sane maximum has been reached anyway. */
const maxDoublings = 30;

/**
 * When a subject with `failures` counted (this one included) may try again, given the block it
 * already had: blocks only ever grow, so concurrent failures never shorten one.
 */
export function throttleBlockedUntil(
  policy: ThrottlePolicy,
  failures: number,
  now: number,
  blockedUntil: number,
): number {
  const excess = failures - policy.allowed;
  if (excess < 0) return blockedUntil;
  const delayMs = Math.min(policy.baseDelayMs * 2 ** Math.min(excess, maxDoublings), policy.maxDelayMs);
  return Math.max(blockedUntil, now + delayMs);
}

/**
 * The instant an entry is forgotten: more than the quiet window after its last failure, and not
 * before its block ends. Integer milliseconds, so "more than" is "+ 1".
 */
export const throttleForgetAt = (policy: ThrottlePolicy, now: number, blockedUntil: number): number =>
  Math.max(now + policy.quietMs + 1, blockedUntil);

export const toSsoClient = (r: Row): SsoClientRecord => ({
  clientId: r.client_id as string,
  secretHash: r.secret_hash as string,
  name: r.name as string,
  createdAt: r.created_at as number,
  expiresAt: r.expires_at as number,
});

export const toSsoGrant = (r: Row): SsoGrantRecord => ({
  codeHash: r.code_hash as string,
  kind: r.kind as SsoGrantKind,
  clientId: r.client_id as string,
  userCode: r.user_code as string,
  status: r.status as SsoGrantStatus,
  userId: (r.user_id as string | null) ?? null,
  redirectUri: (r.redirect_uri as string | null) ?? null,
  state: (r.state as string | null) ?? null,
  codeChallenge: (r.code_challenge as string | null) ?? null,
  lastPolledAt: (r.last_polled_at as number | null) ?? null,
  createdAt: r.created_at as number,
  expiresAt: r.expires_at as number,
});

export const toSsoToken = (r: Row): SsoTokenRecord => ({
  tokenHash: r.token_hash as string,
  kind: r.kind as SsoTokenKind,
  familyId: r.family_id as string,
  clientId: r.client_id as string,
  userId: r.user_id as string,
  createdAt: r.created_at as number,
  expiresAt: r.expires_at as number,
});
