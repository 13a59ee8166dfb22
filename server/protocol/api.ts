/**
 * HTTP API shapes shared by the server and the pages. Pure types and constants: no node:*, no DOM.
 */
export interface ApiError {
  readonly code: string;
  readonly message: string;
  /** Some errors add safe details, e.g. `field` or `retryAfterS`. */
  readonly [detail: string]: unknown;
}

export interface LoginRequest {
  readonly username: string;
  readonly password: string;
}

export interface LoginResponse {
  readonly mfaRequired: boolean;
  /** The user must enroll TOTP before anything else (admin or global policy). */
  readonly mfaEnrollmentRequired?: boolean;
  /** The user must set a new password before anything else (first admin, reset). */
  readonly passwordChangeRequired?: boolean;
}

/** An identity provider the sign-in page offers (`GET /api/auth/oidc/providers`). */
export interface OidcProviderInfo {
  readonly id: string;
  readonly name: string;
  /** Where "Sign in with <name>" goes; `?next=<local path>` may be added. */
  readonly loginUrl: string;
}

export interface OidcProvidersResponse {
  readonly providers: readonly OidcProviderInfo[];
}

/** `POST /api/auth/logout` after an identity-provider sign-in: where to sign out there too. */
export interface LogoutResponse {
  readonly logoutUrl?: string;
}

export interface MfaRequest {
  readonly code: string;
}

export interface Me {
  readonly id: string;
  readonly username: string;
  readonly isAdmin: boolean;
  readonly mfaEnrolled: boolean;
  readonly mfaRequired?: boolean;
  readonly passwordChangeRequired?: boolean;
}

export interface RegionInfo {
  readonly id: string;
  readonly name: string;
}

export interface PortalAssignment {
  readonly accountId: string;
  readonly accountName: string;
  readonly permissionSet: string;
  readonly permissionSetDescription?: string;
  readonly sessionDurationS: number;
}

export interface PortalResponse {
  readonly regions: readonly RegionInfo[];
  readonly defaultRegion?: string;
  readonly assignments: readonly PortalAssignment[];
  /** The user's shell time this week. */
  readonly usage: UsageView;
}

export interface MfaEnrollment {
  /** otpauth:// URI for authenticator apps. */
  readonly otpauthUrl: string;
  /** The same as a QR code image (data: URL, SVG). */
  readonly qrSvgDataUrl: string;
  /** Base32 secret for manual entry. */
  readonly secret: string;
}

/** Names are normalized the same way everywhere (case, Unicode NFKC, whitespace). */
export function normalizeName(name: string): string {
  return name.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

export const accountIdPattern = /^\d{12}$/;
export const regionIdPattern = /^[a-z]{2}(-[a-z]+)+-\d$/;

// ---- Admin API (/api/admin/*) ----
// Times are ISO 8601 strings. Lists are JSON arrays, except the audit log (paged).

export interface AdminUser {
  readonly id: string;
  readonly username: string;
  readonly email: string | null;
  readonly disabled: boolean;
  readonly mfaEnrolled: boolean;
  readonly mfaRequired: boolean;
  /** Group names. */
  readonly groups: readonly string[];
  readonly createdAt: string;
  readonly lastLoginAt: string | null;
  /**
   * Set while the user has no password and an unused invite link: they have not accepted it yet
   * (the console shows Invited, or Invite expired once `expiresAt` passed). Null otherwise.
   */
  readonly invite: { readonly expiresAt: string } | null;
  /** `local`, or `oidc:<provider id>` for a user of an identity provider. */
  readonly source: string;
  /** The SCIM token (its name) that provisioned the user; null when none did. */
  readonly provisionedBy: string | null;
}

/** An identity provider as the admin console lists it (`GET /api/admin/identity-providers`). */
export interface AdminIdentityProvider {
  readonly id: string;
  readonly name: string;
  readonly issuer: string;
  readonly provisioning: string;
  readonly users: number;
  readonly lastSignInAt: string | null;
}

export interface IdentityProviderTest {
  readonly ok: boolean;
  readonly checkedAt: string;
  /** What to tell the administrator, in plain words. */
  readonly message: string;
}

/** A SCIM client's token, without its value (`GET /api/admin/scim-tokens`). */
export interface ScimTokenView {
  readonly id: string;
  readonly name: string;
  readonly providerId: string;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
}

/** The answer to creating one: the value is in it and nowhere else, ever. */
export interface ScimTokenCreated {
  readonly token: ScimTokenView;
  readonly secret: string;
}

export interface CreateUserRequest {
  readonly username: string;
  /** Without one, the answer carries a one-time invite link to set it. */
  readonly password?: string;
  readonly email?: string;
  /** Names of existing groups. */
  readonly groups?: readonly string[];
  readonly mfaRequired?: boolean;
  /**
   * A configured identity provider's id: the user signs in there only (no password, no invite),
   * and their first sign-in links this user. What `preProvisioned` providers need.
   */
  readonly identityProvider?: string;
}

export interface CreateUserResponse {
  readonly id: string;
  readonly username: string;
  readonly inviteUrl?: string;
}

export interface UpdateUserRequest {
  readonly disabled?: boolean;
  readonly email?: string | null;
  readonly mfaRequired?: boolean;
}

export interface InviteResponse {
  readonly inviteUrl: string;
}

/** `POST /api/admin/users/bulk` takes CSV with this header and answers CSV with `bulkUserCsvAnswerColumns`. */
export const bulkUserCsvColumns = ['name', 'email', 'group'] as const;
export const bulkUserCsvAnswerColumns = ['username', 'email', 'group', 'inviteUrl'] as const;

export interface AdminGroupMember {
  readonly id: string;
  readonly username: string;
}

/** Session recording on a group or permission set: off, output, or output and what was typed. */
export type RecordMode = 'off' | 'output' | 'output+input';

export const recordModeLabels: Readonly<Record<RecordMode, string>> = {
  off: 'Not recorded',
  output: 'Record output',
  'output+input': 'Record output and input',
};

export interface AdminGroup {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  /** Size of members' new homes in bytes; null: the region's or the server's default. */
  readonly homeSizeBytes: number | null;
  /** Shell time members may use per week; null: unlimited. */
  readonly weeklyUsageLimitS: number | null;
  /** Members' terminals are recorded. */
  readonly record: RecordMode;
  readonly members: readonly AdminGroupMember[];
  readonly createdAt: string;
}

export interface CreateGroupRequest {
  readonly name: string;
  readonly description?: string;
  /** At least `minHomeSizeBytes`; null or absent: the default. */
  readonly homeSizeBytes?: number | null;
  /** 0 to `maxWeeklyUsageLimitS`; null or absent: unlimited. */
  readonly weeklyUsageLimitS?: number | null;
}

/** Homes smaller than this are not worth creating (the config's floor too). */
export const minHomeSizeBytes = 64 * 1024 * 1024;
export const maxHomeSizeBytes = 1024 ** 4;

export interface SetGroupMembersRequest {
  readonly userIds: readonly string[];
}

export interface AdminAccount {
  readonly accountId: string;
  readonly name: string;
  readonly createdAt: string;
}

export interface AdminPermissionSet {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly sessionDurationS: number;
  /** `{accountId}` and `{name}` are filled in, e.g. `arn:aws:iam::{accountId}:role/Cove-{name}`. */
  readonly roleArnTemplate: string;
  /** Inline session policy (compact JSON text), or null. */
  readonly sessionPolicy: string | null;
  /** Account id → role ARN, replacing the template for that account. */
  readonly roleOverrides: Readonly<Record<string, string>>;
  /** Terminals opened with this set are recorded. */
  readonly record: RecordMode;
  readonly createdAt: string;
}

export type PrincipalKind = 'user' | 'group';

export interface CreateAssignmentRequest {
  readonly principalType: PrincipalKind;
  readonly principalId: string;
  readonly accountId: string;
  /** The permission set's name. */
  readonly permissionSet: string;
}

export interface AdminAssignment {
  readonly id: string;
  readonly principalType: PrincipalKind;
  readonly principalId: string;
  /** The user name or group name. */
  readonly principalName: string;
  readonly accountId: string;
  readonly accountName: string;
  readonly permissionSetId: string;
  readonly permissionSet: string;
  readonly createdAt: string;
}

export interface AuditEntry {
  readonly id: number;
  readonly at: string;
  /** User name of who did it; null for the system. */
  readonly actor: string | null;
  readonly action: string;
  readonly target: string | null;
  readonly details: Readonly<Record<string, unknown>>;
  readonly ip: string | null;
}

export interface AuditResponse {
  readonly entries: readonly AuditEntry[];
}

/** `POST /api/auth/password` (also how a must-change password is changed). */
export interface PasswordChangeRequest {
  readonly currentPassword: string;
  readonly newPassword: string;
}

/** `GET /api/auth/invite/:token`; unknown, used and expired invites all answer 404 `{valid: false, code, message}`. */
export interface InviteInfo {
  readonly valid: boolean;
  readonly username?: string;
  readonly mfaRequired?: boolean;
}

/** `POST /api/auth/invite/accept`; answers like sign-in (`LoginResponse`) and sets the session cookie. */
export interface InviteAcceptRequest {
  readonly token: string;
  readonly password: string;
}

/** `DELETE /api/auth/mfa`: turning MFA off needs a fresh code, and is refused when MFA is required. */
export interface MfaDisableRequest {
  readonly code: string;
}

/** Password rules, the same on the server and in the pages. */
export const passwordRules = { minLength: 10, maxLength: 256 } as const;

// ---- Environments and homes ----

export type EnvironmentStateName = 'running' | 'stopped' | 'missing';

/** A home's usage as its filesystem reports it; times are ISO 8601. */
export interface HomeUsageView {
  readonly usedBytes: number;
  /** What the filesystem holds (what `df` shows as Size): the home's size less ext4's overhead. */
  readonly totalBytes: number;
  /** The home's size as configured (`homes.sizeBytes`, e.g. 1 GiB): what Homes and the shell show. */
  readonly sizeBytes: number;
  readonly lastUsedAt: string;
  /** When the retention sweep deletes the home if it stays unused. */
  readonly expiresAt: string;
}

/** `GET /api/environments/:region`; `home` is null when the user has no home there (yet). */
export interface EnvironmentInfo {
  readonly status: EnvironmentStateName;
  readonly home: HomeUsageView | null;
}

/** `DELETE /api/environments/:region/home` (and the admin's delete) must carry this body. */
export interface DeleteHomeRequest {
  readonly confirm: 'delete';
}

/** `GET /api/admin/homes`: one row per user × region home. */
/** A group's environments being started ahead of a lesson (POST /api/admin/groups/:id/prestart). */
export interface PrestartProgress {
  readonly id: string;
  readonly groupId: string;
  readonly groupName: string;
  readonly region: string;
  /** Enabled members when it began. */
  readonly total: number;
  readonly started: number;
  /** Members with no shell time left this week: not started. */
  readonly skipped: number;
  readonly failed: number;
  /** The first failures, with words for the admin. */
  readonly failures: { username: string; message: string }[];
  readonly done: boolean;
  readonly createdAt: string;
}

export interface AdminHome {
  readonly userId: string;
  /** Null when the user no longer exists (the home waits for the sweep or an admin). */
  readonly username: string | null;
  readonly region: string;
  readonly sizeBytes: number;
  /** Null when the home is not mounted right now. */
  readonly usedBytes: number | null;
  readonly lastUsedAt: string;
  readonly expiresAt: string;
}

/** The `home-nearly-full` notice goes out when usage crosses this share of the home. */
export const homeNearlyFullRatio = 0.9;

/**
 * `812 B`, `12.3 MB`, `1 GB`: decimal units, as disks and S3 count; one decimal below
 * `decimalsBelow` (a trailing `.0` dropped), whole numbers from there on.
 */
export function formatDecimalBytes(bytes: number, decimalsBelow: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const text =
    value >= decimalsBelow || unit === 0 ? String(Math.round(value)) : value.toFixed(1).replace(/\.0$/, '');
  return `${text} ${units[unit]}`;
}

/**
 * `212 MiB`, `1 GiB`: how a home's size and usage read everywhere (the shell's status line, the
 * admin's Homes and Groups tabs, notices). Binary units, labelled as such, as `df -h` counts: a
 * 1 GiB home is 1024 MiB, of which ext4 leaves about 974 MiB usable (df's `974M`).
 */
export function formatHomeBytes(bytes: number): string {
  return formatBinaryBytes(bytes, 10);
}

/** `812 B`, `12.3 KiB`, `1 GiB`: one decimal below `decimalsBelow` (`.0` dropped), whole from there. */
export function formatBinaryBytes(bytes: number, decimalsBelow: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text =
    value >= decimalsBelow || unit === 0 ? String(Math.round(value)) : value.toFixed(1).replace(/\.0$/, '');
  return `${text} ${units[unit]}`;
}

/** `12.3 MB`: how a transfer's size reads (one decimal below 100). */
export function formatTransferBytes(bytes: number): string {
  return formatDecimalBytes(bytes, 100);
}

// ---- Usage quota ----

/**
 * Shell time this week (weeks start Monday 00:00 UTC). `limitS` null: unlimited. Time counts
 * while any of the user's environments runs, once per user however many regions run.
 */
export interface UsageView {
  readonly usedS: number;
  readonly limitS: number | null;
  /** When the count starts again from zero (next Monday 00:00 UTC), ISO 8601. */
  readonly resetsAt: string;
}

/** A week: a larger limit could never run out. */
export const maxWeeklyUsageLimitS = 7 * 24 * 3600;

/** `3 h 12 min`, `50 h`, `45 min`: whole minutes, rounded down. */
export function formatUsageDuration(seconds: number): string {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h === 0) return `${m} min`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

const weekdayNames = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const monthNames = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Mon 30 Nov 2026 00:00 UTC`: the same words on the server and in the pages, whatever the locale. */
export function formatUtcTime(time: number | string): string {
  const d = new Date(time);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${weekdayNames[d.getUTCDay()] ?? ''} ${d.getUTCDate()} ${monthNames[d.getUTCMonth()] ?? ''} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

// ---- Health (/readyz) ----

/**
 * What Cove last saw of STS. `unreachable` (no answer at all: refused, DNS, timed out) and
 * `no-identity` (the server has no AWS credentials of its own) are configuration problems that
 * last until an administrator acts; `failing` (throttling, 5xx) passes by itself; `unknown`:
 * no user has asked for credentials since the server started.
 */
export type StsStatus = 'unknown' | 'ok' | 'unreachable' | 'no-identity' | 'failing';

export interface StsHealthView {
  readonly status: StsStatus;
  /** Where AssumeRole goes: the configured `sts.endpoint`, or AWS's endpoint for `sts.region`. */
  readonly endpoint: string;
  /** When this status began (ISO 8601); absent while `unknown`. */
  readonly since?: string;
  /** The last failure's code (`ECONNREFUSED`, `Throttling`, `CredentialsProviderError`, ...). */
  readonly lastError?: string;
  /** What the administrator should do, for every status but `ok` and `unknown`. */
  readonly action?: string;
}

/** `GET /readyz`: 200 `ready` or 503 `degraded` by `checks`; `sts` is reported, never a check. */
export interface ReadyzResponse {
  readonly status: 'ready' | 'degraded';
  /** Which Cove process answered (config `instanceId`). */
  readonly instance: string;
  readonly checks: Readonly<Record<string, boolean>>;
  readonly sts: StsHealthView;
}
