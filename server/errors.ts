/**
 * Coded errors: what the user reads (code, message that says what to do) is separate from what
 * the log gets (the cause). HTTP bodies carry only `{code, message}` and, for some, safe details.
 */
export type ErrorCode = `COVE_ERR_${string}`;

export class CoveError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly statusCode: number,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CoveError';
    this.details = options.details;
    this.headers = options.headers;
  }
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  toJSON(): { code: string; message: string } & Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.details };
  }
}

/** The catalogue: one factory per failure a user can hit. */
export const errors = {
  badRequest: (message: string, details?: Record<string, unknown>) =>
    new CoveError('COVE_ERR_REQUEST_INVALID', 400, message, details ? { details } : {}),
  unsupportedMediaType: () =>
    new CoveError(
      'COVE_ERR_REQUEST_MEDIA_TYPE',
      415,
      'Send the request body as JSON (Content-Type: application/json).',
    ),
  notFound: (what = 'That resource') => new CoveError('COVE_ERR_NOT_FOUND', 404, `${what} does not exist.`),
  conflict: (message: string) => new CoveError('COVE_ERR_CONFLICT', 409, message),
  notAuthenticated: () =>
    new CoveError(
      'COVE_ERR_AUTH_REQUIRED',
      401,
      'You are not signed in, or your session has expired. Sign in again.',
    ),
  badCredentials: () =>
    new CoveError(
      'COVE_ERR_AUTH_INVALID',
      401,
      'The user name or password is wrong. Check both and try again.',
    ),
  mfaPending: () =>
    new CoveError(
      'COVE_ERR_AUTH_MFA_PENDING',
      401,
      'Enter the code from your authenticator app to finish signing in.',
    ),
  mfaInvalid: () =>
    new CoveError(
      'COVE_ERR_AUTH_MFA_INVALID',
      401,
      'That code is not right. Enter the current 6-digit code from your authenticator app.',
    ),
  mfaReplayed: () =>
    new CoveError(
      'COVE_ERR_AUTH_MFA_REPLAYED',
      401,
      'That code was already used. Wait for the next code and enter it.',
    ),
  mfaLockedOut: () =>
    new CoveError('COVE_ERR_AUTH_MFA_LOCKED', 401, 'Too many wrong codes. Sign in with your password again.'),
  passwordChangeRequired: () =>
    new CoveError('COVE_ERR_AUTH_PASSWORD_CHANGE_REQUIRED', 403, 'Set a new password before you continue.'),
  mfaEnrollmentRequired: () =>
    new CoveError(
      'COVE_ERR_AUTH_MFA_ENROLLMENT_REQUIRED',
      403,
      'Your administrator requires MFA. Set up your authenticator app to continue.',
    ),
  throttled: (retryAfterS: number) =>
    new CoveError(
      'COVE_ERR_AUTH_THROTTLED',
      429,
      `Too many failed attempts. Try again in ${retryAfterS} seconds.`,
      {
        headers: { 'retry-after': String(retryAfterS) },
        details: { retryAfterS },
      },
    ),
  forbidden: (message = 'You do not have access to that.') =>
    new CoveError('COVE_ERR_FORBIDDEN', 403, message),
  adminOnly: () => new CoveError('COVE_ERR_ADMIN_REQUIRED', 403, 'Only administrators can do that.'),
  csrf: () =>
    new CoveError(
      'COVE_ERR_CSRF',
      403,
      'This request did not come from a Cove page (its Origin does not match). Reload Cove and try again.',
    ),
  storeUnavailable: (cause: unknown) =>
    new CoveError(
      'COVE_ERR_STORE_UNAVAILABLE',
      503,
      'Cove cannot reach its database right now. Try again in a moment.',
      {
        cause,
      },
    ),
  internal: (reference: string, cause?: unknown) =>
    new CoveError(
      'COVE_ERR_INTERNAL',
      500,
      `Something went wrong on Cove's side. Try again; if it keeps happening, give your administrator this reference: ${reference}.`,
      { cause },
    ),
} as const;
