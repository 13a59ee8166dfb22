/**
 * Errors on the AWS wire: the SSO OIDC and portal APIs answer the way AWS does, so the CLI and
 * SDKs show their usual messages. The SDKs read the error's name from the `x-amzn-ErrorType`
 * header (rest-json); OIDC bodies carry OAuth's `error` and `error_description`, portal bodies a
 * `message`. Never a Cove code, a stack or another user's data.
 */
export class AwsApiError extends Error {
  constructor(
    readonly type: string,
    readonly statusCode: number,
    readonly body: Readonly<Record<string, string>>,
    message: string,
  ) {
    super(message);
    this.name = 'AwsApiError';
  }
}

const oidc = (type: string, statusCode: number, error: string, description: string) =>
  new AwsApiError(type, statusCode, { error, error_description: description }, description);

const portal = (type: string, statusCode: number, message: string) =>
  new AwsApiError(type, statusCode, { message }, message);

/** SSO OIDC (`/aws/oidc`): the shapes of com.amazonaws.ssooidc. */
export const oidcErrors = {
  invalidRequest: (description: string) =>
    oidc('InvalidRequestException', 400, 'invalid_request', description),
  invalidClient: () =>
    oidc(
      'InvalidClientException',
      401,
      'invalid_client',
      'The client is not registered, its secret is wrong, or its registration expired. Register again.',
    ),
  invalidGrant: (description: string) => oidc('InvalidGrantException', 400, 'invalid_grant', description),
  unsupportedGrantType: () =>
    oidc(
      'UnsupportedGrantTypeException',
      400,
      'unsupported_grant_type',
      'Cove supports the device code, authorization code (PKCE) and refresh token grants.',
    ),
  authorizationPending: () =>
    oidc(
      'AuthorizationPendingException',
      400,
      'authorization_pending',
      'The request has not been approved yet. Approve it on the Authorize request page in Cove.',
    ),
  slowDown: () =>
    oidc('SlowDownException', 400, 'slow_down', 'You are polling too fast. Wait the interval between calls.'),
  expiredToken: () =>
    oidc(
      'ExpiredTokenException',
      400,
      'expired_token',
      'The sign-in request expired before it was approved. Start the sign-in again.',
    ),
  accessDenied: () =>
    oidc('AccessDeniedException', 400, 'access_denied', 'The sign-in request was denied in Cove.'),
  internal: () =>
    oidc('InternalServerException', 500, 'server_error', 'Cove could not answer. Try again in a moment.'),
  /** Not in the SSO OIDC model: the SDKs see the name and retry on the 429 like any throttling. */
  tooManyRequests: (retryAfterS: number) =>
    oidc(
      'TooManyRequestsException',
      429,
      'slow_down',
      `Too many sign-in requests from this address. Try again in ${retryAfterS} seconds.`,
    ),
};

/** SSO portal (`/aws/portal`): the shapes of com.amazonaws.sso, plus the 403 AWS sends for a role not assigned. */
export const portalErrors = {
  unauthorized: () => portal('UnauthorizedException', 401, 'Session token not found or invalid'),
  forbidden: (message = 'No access') => portal('ForbiddenException', 403, message),
  invalidRequest: (message: string) => portal('InvalidRequestException', 400, message),
  tooManyRequests: (message: string) => portal('TooManyRequestsException', 429, message),
};
