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
