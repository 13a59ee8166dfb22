/**
 * Command line access (issue 5) shared by the server and the portal: pure types, no node:*, no DOM.
 *
 * `POST /api/credentials` {@link CliCredentialsRequest} → {@link CliCredentialsResponse}, sent with
 * `Cache-Control: no-store`. Needs a full session, the Cove Origin and a JSON body. Errors:
 * 403 `COVE_ERR_CREDENTIALS_ACCESS` (the same body for an unknown and an unassigned account ×
 * permission set), 403 `COVE_ERR_CREDENTIALS_ASSUME_ROLE` (STS refused the role), 503
 * `COVE_ERR_CREDENTIALS_NOT_CONFIGURED` (this install cannot use STS: no retry hint), 503
 * `COVE_ERR_CREDENTIALS_UNAVAILABLE` (STS throttled or failed: try again).
 */

export interface CliCredentialsRequest {
  readonly accountId: string;
  /** The permission set's name. */
  readonly permissionSet: string;
  /** The region to suggest (AWS_REGION); default the server's default region. */
  readonly region?: string;
}

export interface CliCredentialsResponse {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  /** ISO 8601. */
  readonly expiration: string;
  readonly region: string;
  /** Something the user should read, e.g. that the role allows only 1 h. */
  readonly notice?: string;
}
