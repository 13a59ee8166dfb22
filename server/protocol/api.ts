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
}

export interface CreateUserRequest {
  readonly username: string;
  /** Without one, the answer carries a one-time invite link to set it. */
  readonly password?: string;
  readonly email?: string;
  /** Names of existing groups. */
  readonly groups?: readonly string[];
  readonly mfaRequired?: boolean;
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

export interface AdminGroup {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly members: readonly AdminGroupMember[];
  readonly createdAt: string;
}

export interface CreateGroupRequest {
  readonly name: string;
  readonly description?: string;
}

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
