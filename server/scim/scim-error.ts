/**
 * SCIM's own error answer (RFC 7644 §3.12): `{"schemas":[Error URN],"status":"400",
 * "scimType":"invalidFilter","detail":"…"}`. SCIM clients (Okta, Entra) read these, not Cove's
 * `{code, message}`, so everything under /scim/v2 answers in this shape.
 */
export const errorSchema = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** RFC 7644 §3.12's scimType values Cove uses. */
export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue';

export class ScimError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly scimType?: ScimType,
    /** Audit slug for the refusal. */
    readonly reason: string = scimType ?? `status_${status}`,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
    this.name = 'ScimError';
  }

  toJSON(): { schemas: string[]; status: string; scimType?: string; detail: string } {
    return {
      schemas: [errorSchema],
      status: String(this.status),
      ...(this.scimType ? { scimType: this.scimType } : {}),
      detail: this.detail,
    };
  }
}

export const scimErrors = {
  unauthorized: (reason: string) =>
    new ScimError(
      401,
      'Send the SCIM bearer token an administrator created for this client in Cove (Admin > Provisioning): Authorization: Bearer cove_scim_…',
      undefined,
      reason,
    ),
  invalidSyntax: (detail: string) => new ScimError(400, detail, 'invalidSyntax'),
  invalidValue: (detail: string) => new ScimError(400, detail, 'invalidValue'),
  invalidFilter: (detail: string) => new ScimError(400, detail, 'invalidFilter'),
  invalidPath: (detail: string) => new ScimError(400, detail, 'invalidPath'),
  mutability: (detail: string) => new ScimError(400, detail, 'mutability'),
  noTarget: (detail: string) => new ScimError(400, detail, 'noTarget'),
  uniqueness: (detail: string) => new ScimError(409, detail, 'uniqueness'),
  notFound: (what: string) =>
    new ScimError(404, `${what} does not exist (or this client does not manage it).`),
  tooLarge: (detail: string) => new ScimError(413, detail, undefined, 'too_large'),
  /** Too many failed authentications from one address: answered, logged, not audited again. */
  throttled: (retryAfterS: number) =>
    new ScimError(
      429,
      `Too many requests with a missing or wrong SCIM token from this address. Try again in ${retryAfterS} seconds with the right token.`,
      undefined,
      'throttled',
      { 'retry-after': String(retryAfterS) },
    ),
  mediaType: () =>
    new ScimError(
      415,
      'Send the request body as JSON with Content-Type: application/scim+json (or application/json).',
      undefined,
      'media_type',
    ),
};
