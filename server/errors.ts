/**
 * Coded errors: what the user reads (code, message that says what to do) is separate from what
 * the log gets (the cause). HTTP bodies carry only `{code, message}` and, for some, safe details.
 */
import type { GitLinkProblem } from './links/git-link.js';

const gitRefusals: Record<GitLinkProblem, (scheme?: string) => string> = {
  invalid: () =>
    "The link's repository is not a valid https:// address (no spaces, hidden characters, query or fragment). Nothing was cloned.",
  scheme: (scheme) =>
    `A link may only clone https:// repositories, not ${scheme ?? 'this kind of address'}. Nothing was cloned.`,
  credentials: () =>
    "The link's repository address carries a user name or password; links must not. Nothing was cloned.",
  'not-allowed': () =>
    'This Cove does not clone repositories from that address (see links.gitAllowedPrefixes). Nothing was cloned; ask your administrator.',
  folder: () =>
    'The repository\'s name does not make a plain folder name (letters, digits, ".", "_", "-"). Nothing was cloned.',
};

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

/**
 * What a store (SQLite or PostgreSQL) says when it cannot do what was asked, in the same words for
 * both engines; callers test `kind`, never an engine's own error code (that stays in server/store).
 * - `conflict`: a unique key is taken (two requests raced past the same check): 409.
 * - `full`: the disk under the database is full; the data is intact and reads still work: 503.
 * - `unavailable`: the database cannot serve now (down, unreachable, busy, pool exhausted): 503.
 */
export type StoreErrorKind = 'conflict' | 'full' | 'unavailable';

export class StoreError extends CoveError {
  constructor(
    readonly kind: StoreErrorKind,
    code: ErrorCode,
    statusCode: number,
    message: string,
    cause: unknown,
  ) {
    super(code, statusCode, message, { cause });
    this.name = 'StoreError';
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
    new StoreError(
      'unavailable',
      'COVE_ERR_STORE_UNAVAILABLE',
      503,
      'Cove cannot reach its database right now. Try again in a moment.',
      cause,
    ),
  /** A unique key taken by a concurrent request; services that know the field say it better. */
  storeConflict: (cause: unknown) =>
    new StoreError(
      'conflict',
      'COVE_ERR_STORE_CONFLICT',
      409,
      'Someone else saved the same thing at the same moment. Reload the page and try again.',
      cause,
    ),
  /** The database was upgraded by a newer Cove: this one refuses to start rather than guess. */
  storeSchemaNewer: (found: number, known: number) =>
    new CoveError(
      'COVE_ERR_STORE_SCHEMA_NEWER',
      503,
      `The database is at schema version ${found}, but this Cove knows only versions up to ${known}: a newer Cove has upgraded it. Run that newer Cove (or a later one), or restore a backup taken before the upgrade; this Cove will not touch the database.`,
    ),
  internal: (reference: string, cause?: unknown) =>
    new CoveError(
      'COVE_ERR_INTERNAL',
      500,
      `Something went wrong on Cove's side. Try again; if it keeps happening, give your administrator this reference: ${reference}.`,
      { cause },
    ),
  /**
   * A new or renamed user, group or account name that reads like an existing one (same Unicode
   * TR39 confusable skeleton: `admın` beside `admin`). 400, not 409: the name itself is the
   * problem, and the body names the existing look-alike so the admin sees which one.
   */
  directoryNameLookalike: (
    field: string,
    kind: 'user' | 'group' | 'account',
    name: string,
    lookalike: string,
    unusual: readonly string[],
  ) =>
    new CoveError(
      'COVE_ERR_DIRECTORY_NAME_LOOKALIKE',
      400,
      `${field}: "${name}"${unusual.length > 0 ? ` (with ${unusual.join(', ')})` : ''} looks like the existing ${kind} "${lookalike}": they differ only in characters that look alike, so people could mistake one for the other. Choose a name that looks different.`,
      { details: { field, lookalike } },
    ),
  federatedUserPassword: (username: string, providerId: string) =>
    new CoveError(
      'COVE_ERR_DIRECTORY_FEDERATED_PASSWORD',
      409,
      `${username} signs in through the identity provider "${providerId}", so Cove keeps no password for them and cannot set one. Reset their password at the identity provider; to stop their access, disable the user.`,
    ),
  passwordPolicy: (message: string) => new CoveError('COVE_ERR_AUTH_PASSWORD_POLICY', 400, message),
  currentPasswordInvalid: () =>
    new CoveError(
      'COVE_ERR_AUTH_CURRENT_PASSWORD_INVALID',
      403,
      'Your current password is not right. Enter it again.',
    ),
  inviteInvalid: () =>
    new CoveError(
      'COVE_ERR_AUTH_INVITE_INVALID',
      404,
      'This invite link cannot be used: it was already used, has expired, or was replaced by a newer one. Ask your administrator for a new link.',
    ),
  mfaAlreadyEnrolled: () =>
    new CoveError(
      'COVE_ERR_AUTH_MFA_ALREADY_ENROLLED',
      409,
      'MFA is already set up. Turn it off first to set up a new authenticator.',
    ),
  mfaEnrollmentNotStarted: () =>
    new CoveError(
      'COVE_ERR_AUTH_MFA_ENROLLMENT_NOT_STARTED',
      409,
      'Start MFA setup first, then enter the code your app shows.',
    ),
  mfaNotEnrolled: () =>
    new CoveError('COVE_ERR_AUTH_MFA_NOT_ENROLLED', 409, 'MFA is not set up for your account.'),
  mfaCannotDisable: () =>
    new CoveError(
      'COVE_ERR_AUTH_MFA_REQUIRED',
      403,
      'Your administrator requires MFA, so it cannot be turned off.',
    ),
  homeCapacity: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_HOME_CAPACITY',
      507,
      'The server is out of space for new homes; ask your administrator.',
      { cause },
    ),
  homeNotSupported: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_HOME_NOT_SUPPORTED',
      503,
      'This Cove server cannot create homes (it must run as root on its host). Tell your administrator.',
      { cause },
    ),
  homeMountFailed: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_HOME_MOUNT_FAILED',
      503,
      'Cove could not prepare your home right now. Try again in a minute; if it keeps happening, tell your administrator.',
      { cause },
    ),
  homeBusy: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_HOME_BUSY',
      409,
      'Your home is still in use. Close your terminals, wait a few seconds and try again.',
      { cause },
    ),
  homeConfirmRequired: () =>
    new CoveError(
      'COVE_ERR_HOME_CONFIRM_REQUIRED',
      400,
      'Deleting a home erases every file in it. To confirm, send {"confirm": "delete"} (type the word delete).',
    ),
  /**
   * 429, not 403: the refusal is temporary and ends at a known time, which Retry-After states;
   * nothing about the user's rights changed.
   */
  usageQuotaExhausted: (
    message: string,
    usage: { usedS: number; limitS: number; resetsAt: string },
    retryAfterS: number,
  ) =>
    new CoveError('COVE_ERR_USAGE_QUOTA_EXHAUSTED', 429, message, {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterS))) },
      details: usage,
    }),
  /** The same answer for a code never issued, expired or already answered: codes cannot be probed. */
  ssoRequestUnknown: () =>
    new CoveError(
      'COVE_ERR_SSO_REQUEST_UNKNOWN',
      404,
      'No waiting sign-in request has that code: it may have expired or been answered already. Run `aws sso login` again and compare the code it shows.',
    ),
  ssoThrottled: (retryAfterS: number) =>
    new CoveError(
      'COVE_ERR_SSO_THROTTLED',
      429,
      `Too many wrong codes. Wait ${retryAfterS} seconds, then enter the code your command line shows.`,
      { headers: { 'retry-after': String(retryAfterS) }, details: { retryAfterS } },
    ),
  /** The same body for an unknown and an unassigned account × permission set: no enumeration. */
  credentialsNoAccess: () =>
    new CoveError(
      'COVE_ERR_CREDENTIALS_ACCESS',
      403,
      'You do not have that account and permission set. Pick one from the portal.',
    ),
  /**
   * STS refused the user's own assignment. Names only the role's name (never its ARN) and the AWS
   * error code (never STS's message, which carries the server's ARN).
   */
  credentialsAssumeRole: (roleName: string, accountId: string, awsCode: string, cause?: unknown) =>
    new CoveError(
      'COVE_ERR_CREDENTIALS_ASSUME_ROLE',
      403,
      `could not assume role ${roleName} in account ${accountId}: ${awsCode}. Ask your administrator to check the role and its trust policy.`,
      { cause },
    ),
  credentialsUnavailable: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_CREDENTIALS_UNAVAILABLE',
      503,
      'AWS credentials are unavailable right now (STS did not answer). Your shell still works; try again in a minute.',
      { cause },
    ),
  /**
   * The server cannot use STS at all (no answer and none recently, or no valid identity of its
   * own): a configuration problem that waiting does not fix, so no retry hint. The administrator
   * sees what to configure in /readyz and the admin console.
   */
  credentialsNotConfigured: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_CREDENTIALS_NOT_CONFIGURED',
      503,
      'AWS credentials are not set up on this Cove server (it cannot get any from AWS STS). Your shell works without AWS access; tell your administrator.',
      { cause },
    ),
  /** The in-container endpoint got no token (the SDKs send AWS_CONTAINER_AUTHORIZATION_TOKEN). */
  credentialsTokenMissing: () =>
    new CoveError(
      'COVE_ERR_CREDENTIALS_TOKEN_MISSING',
      401,
      'No credentials token was sent. Use the AWS CLI or an SDK inside a Cove tab; they send it for you.',
    ),
  /** One answer for a forged, foreign, old (before a restart) or closed-tab token. */
  credentialsTokenInvalid: () =>
    new CoveError(
      'COVE_ERR_CREDENTIALS_TOKEN_INVALID',
      403,
      'This credentials token is not valid here (its tab closed or the environment restarted). Open a new tab.',
    ),
  credentialsNoAccount: () =>
    new CoveError(
      'COVE_ERR_CREDENTIALS_NO_ACCOUNT',
      403,
      'This tab has no AWS account. Open one from the portal with an account, or use a profile: aws --profile <name>.',
    ),
  // ---- Files (upload/download through S3) ----
  filesInvalidName: (reason: string) =>
    new CoveError(
      'COVE_ERR_FILES_INVALID_NAME',
      400,
      `That file name cannot be used: ${reason}. Rename the file and try again.`,
      { details: { reason } },
    ),
  filesInvalidPath: (reason: string) =>
    new CoveError(
      'COVE_ERR_FILES_INVALID_PATH',
      400,
      `That path cannot be used: ${reason}. Give a path inside your home, such as ~/data or ~/notes.txt.`,
      { details: { reason } },
    ),
  filesNotFound: (path: string) =>
    new CoveError('COVE_ERR_FILES_NOT_FOUND', 404, `${path} does not exist in your home. Check the path.`),
  filesNotAFolder: (path: string) =>
    new CoveError('COVE_ERR_FILES_NOT_A_FOLDER', 400, `${path} is not a folder. Pick a folder in your home.`),
  filesNotAFile: (path: string) =>
    new CoveError(
      'COVE_ERR_FILES_NOT_A_FILE',
      400,
      `${path} is not a regular file (a device, socket or pipe cannot be downloaded).`,
    ),
  filesSymlink: (path: string) =>
    new CoveError(
      'COVE_ERR_FILES_SYMLINK',
      400,
      `${path} is a symbolic link, or leads outside your home. Pick the real folder or file instead.`,
    ),
  filesPermission: (path: string) =>
    new CoveError(
      'COVE_ERR_FILES_PERMISSION',
      403,
      `You cannot read or write ${path} (check its permissions with ls -l).`,
    ),
  filesExists: (message: string) => new CoveError('COVE_ERR_FILES_EXISTS', 409, message),
  filesTooLarge: (limitBytes: number, limitText: string) =>
    new CoveError(
      'COVE_ERR_FILES_TOO_LARGE',
      413,
      `Files can be at most ${limitText}. Split the file (for example with split -b) or compress it.`,
      { details: { limitBytes } },
    ),
  /** Refused before any URL is signed (413 as for the per-file limit); mid-write is filesHomeFilledUp (507). */
  filesHomeFull: (freeBytes: number, neededBytes: number, freeText: string, neededText: string) =>
    new CoveError(
      'COVE_ERR_FILES_HOME_FULL',
      413,
      `Not enough space in your home: ${freeText} free, the files need ${neededText}. Delete files you no longer need and try again.`,
      { details: { freeBytes, neededBytes } },
    ),
  /** The disk ran out during the write itself (the helper's ENOSPC): the server's storage, 507. */
  filesHomeFilledUp: () =>
    new CoveError(
      'COVE_ERR_FILES_HOME_FULL',
      507,
      'Your home filled up while the file was being saved; nothing was saved. Delete files you no longer need and upload again.',
    ),
  filesSizeMismatch: (declaredBytes: number, actualBytes: number) =>
    new CoveError(
      'COVE_ERR_FILES_SIZE_MISMATCH',
      400,
      `The upload holds ${actualBytes} bytes but ${declaredBytes} were announced; nothing was saved. Upload the file again.`,
      { details: { declaredBytes, actualBytes } },
    ),
  filesPartsInvalid: (reason: string) =>
    new CoveError(
      'COVE_ERR_FILES_PARTS_INVALID',
      400,
      `The upload's parts do not match: ${reason}. Upload the file again.`,
    ),
  /** Identical for an unknown id and another user's: ids are not for probing. */
  filesUploadNotFound: () =>
    new CoveError(
      'COVE_ERR_FILES_UPLOAD_NOT_FOUND',
      404,
      'That upload does not exist, was cancelled or has already finished. Start the upload again.',
    ),
  filesProgressNotFound: () =>
    new CoveError(
      'COVE_ERR_FILES_PROGRESS_NOT_FOUND',
      404,
      'No download with that progress id is being prepared: it has not started yet or is done.',
    ),
  filesUploadBusy: () =>
    new CoveError(
      'COVE_ERR_FILES_UPLOAD_BUSY',
      409,
      'That upload is already being saved. Wait for it to finish.',
    ),
  filesTooManyUploads: (limit: number) =>
    new CoveError(
      'COVE_ERR_FILES_TOO_MANY_UPLOADS',
      429,
      `You have ${limit} unfinished uploads. Finish or cancel some before starting more.`,
    ),
  /** The user's other transfers hold most of their staging allowance (`files.maxStagedBytesPerUser`). */
  filesStagingFull: (
    usedBytes: number,
    neededBytes: number,
    limitBytes: number,
    usedText: string,
    limitText: string,
  ) =>
    new CoveError(
      'COVE_ERR_FILES_STAGING_FULL',
      429,
      `Cove is already holding ${usedText} of your files for transfer and holds at most ${limitText} per user. Finish or cancel your other uploads, fetch your downloads (unfetched ones expire within minutes), then try again.`,
      { details: { usedBytes, neededBytes, limitBytes } },
    ),
  filesTooManyDownloads: (limit: number) =>
    new CoveError(
      'COVE_ERR_FILES_TOO_MANY_DOWNLOADS',
      429,
      `You already have ${limit} downloads being prepared. Wait for one to finish, then try again.`,
      { details: { limit } },
    ),
  /** The embedded S3's disk is down to `files.stagingReserveBytes`: the server's storage, 507. */
  filesHostFull: () =>
    new CoveError(
      'COVE_ERR_FILES_HOST_FULL',
      507,
      'The server is short of disk space for file transfers, so nothing was transferred; your files and terminal are not affected. Try again later, or tell your administrator.',
    ),
  filesUnavailable: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_FILES_UNAVAILABLE',
      503,
      'File transfer is unavailable right now; your terminal is not affected. Try again in a minute.',
      { cause },
    ),
  filesMisconfigured: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_FILES_MISCONFIGURED',
      503,
      'File transfer is not set up correctly on this server; your terminal is not affected. Tell your administrator (the server log says what to fix).',
      { cause },
    ),
  filesEnvironmentUnavailable: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_FILES_ENVIRONMENT_UNAVAILABLE',
      503,
      'Cove cannot reach your environment to move the file right now; nothing was saved. Try again in a minute.',
      { cause },
    ),
  filesFailed: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_FILES_FAILED',
      500,
      'The file could not be transferred; nothing was saved. Try again; if it keeps happening, tell your administrator.',
      { cause },
    ),
  /** The egress firewall (sandbox/docker/egress-policy.ts) is missing and could not be put back. */
  environmentNetworkPolicy: () =>
    new CoveError(
      'COVE_ERR_ENVIRONMENT_NETWORK_POLICY',
      503,
      "Cove's network protection for containers is not in place, so no environment is started. An administrator must fix it: the server log lists the missing firewall rules (see docs/hardening.md).",
    ),
  /** `security.versionGate: refuse` and the engine, containerd or runc lacks known escape fixes. */
  environmentEngineOutdated: () =>
    new CoveError(
      'COVE_ERR_ENVIRONMENT_ENGINE_OUTDATED',
      503,
      "Cove's container engine is older than the releases that fix known container escapes, so no environment is started. An administrator must update Docker, containerd or runc (the server log names which).",
    ),
  /**
   * The disk under the database is full (SQLite's SQLITE_FULL, PostgreSQL's disk_full, ENOSPC):
   * the database is fine, the disk it lives on is not.
   * 503 like other "cannot serve now" store failures; reads keep working.
   */
  storeDiskFull: (cause?: unknown) =>
    new StoreError(
      'full',
      'COVE_ERR_STORE_DISK_FULL',
      503,
      "Cove's server is out of disk space, so it cannot save changes right now; nothing was changed. Open terminals keep working. Try again later, and tell your administrator if it keeps happening.",
      cause,
    ),
  /**
   * The container engine's storage (its data root, /var/lib/docker) is full: no new container can
   * be made or started. 507 as for a full home store; running environments are not affected.
   */
  environmentHostFull: (cause?: unknown) =>
    new CoveError(
      'COVE_ERR_ENVIRONMENT_HOST_FULL',
      507,
      'The server that runs environments is out of disk space, so no new environment can start. Open terminals keep working; try again later and tell your administrator.',
      { cause },
    ),
  /** An "Open in Cove" link's repository was refused before anything ran (README: Open in Cove). */
  linkGitRefused: (problem: GitLinkProblem, scheme?: string) =>
    new CoveError('COVE_ERR_LINK_GIT_REFUSED', 400, gitRefusals[problem](scheme), { details: { problem } }),
  linkNotRunning: () =>
    new CoveError(
      'COVE_ERR_LINK_NOT_RUNNING',
      409,
      'Your environment in this region is not running, so nothing was cloned. Open a terminal there, then open the link again.',
    ),
  /** git itself failed (host unreachable, no such repository): its last line says why. */
  linkCloneFailed: (url: string, reason: string) =>
    new CoveError(
      'COVE_ERR_LINK_CLONE_FAILED',
      422,
      `Cloning ${url} failed${reason ? `: ${reason}` : ''}. Nothing was typed. Check the address and that your environment can reach that host.`,
    ),
  linkCloneTimeout: (url: string, folder: string, timeoutS: number) =>
    new CoveError(
      'COVE_ERR_LINK_CLONE_TIMEOUT',
      504,
      `Cloning ${url} took longer than ${timeoutS} s and was stopped. Nothing was typed. If ~/${folder} was left half-made, delete it and open the link again.`,
    ),
} as const;
