/**
 * The AWS CLI sign-in pages (issue 20) shared by the server and the web pages: pure types.
 *
 * `GET /api/sso/requests/:userCode` → {@link SsoRequestView}: a sign-in request waiting for the
 * signed-in person. `POST /api/sso/requests/:userCode/decision` `{allow}` → {@link SsoDecision}.
 * Both: 404 `COVE_ERR_SSO_REQUEST_UNKNOWN` (never issued, expired or answered: the same body),
 * 429 `COVE_ERR_SSO_THROTTLED` after too many wrong codes. `GET /api/sso/laptop-config` →
 * {@link LaptopConfigView}.
 */

export interface SsoRequestView {
  readonly userCode: string;
  /** `device`: the command line shows the code; `code`: the browser goes back to the command line. */
  readonly kind: 'device' | 'code';
  /** The name the command line registered with (e.g. `botocore-client-cove`). */
  readonly clientName: string;
  readonly expiresAt: number;
}

export interface SsoDecision {
  readonly status: 'approved' | 'denied';
  /** Authorization code requests: where the browser goes next (the command line's loopback address). */
  readonly redirectTo?: string;
}

export interface LaptopConfigView {
  readonly startUrl: string;
  readonly region: string;
  /** The `~/.aws/config` text: the `sso-session`, its endpoints, one profile per assignment. */
  readonly config: string;
}
