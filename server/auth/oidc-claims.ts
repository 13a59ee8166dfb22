/**
 * What Cove takes from a verified ID token: who (subject, user name, email), which groups, and
 * whether the provider did MFA. Pure, so every rule is one table test.
 */
import type { Config } from '../config.js';
import { CoveError } from '../errors.js';
import { validateEmail, validateUsername } from '../directory/directory-validation.js';

export type OidcProviderConfig = Config['auth']['oidc'][number];

export interface OidcIdentity {
  readonly subject: string;
  /** Normalized as every Cove user name is. */
  readonly username: string;
  readonly email: string | null;
  /**
   * Group names as the provider sent them (deduplicated, bounded); null when the provider is not
   * configured to carry groups (`groupsClaim: ""`), so memberships stay as admins set them.
   */
  readonly groups: readonly string[] | null;
  /** The provider said MFA happened (amr/acr); whether Cove trusts it is the provider's config. */
  readonly mfa: boolean;
}

export interface ClaimProblem {
  readonly reason: 'username_missing' | 'username_invalid' | 'email_unverified' | 'subject_invalid';
  readonly detail: string;
}

/** A groups claim longer than this is cut: a token is not a way to make Cove do unbounded work. */
export const maxClaimedGroups = 500;
const maxGroupNameChars = 256;

const isVerified = (value: unknown): boolean => value === true || value === 'true';

function stringClaim(claims: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const value = claims[name];
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** An array of names, or one string (some providers send a single group as a string). */
export function groupsFromClaim(value: unknown): string[] {
  const raw = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  const names = raw
    .filter((g): g is string => typeof g === 'string')
    .map((g) => g.trim())
    .filter((g) => g !== '' && g.length <= maxGroupNameChars);
  return [...new Set(names)].slice(0, maxClaimedGroups);
}

export function mfaClaimed(claims: Readonly<Record<string, unknown>>, provider: OidcProviderConfig): boolean {
  const amr = Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string') : [];
  if (amr.some((method) => provider.mfaAmrValues.includes(method))) return true;
  const acr = claims.acr;
  return typeof acr === 'string' && provider.mfaAcrValues.includes(acr);
}

export function identityFromClaims(
  claims: Readonly<Record<string, unknown>>,
  provider: OidcProviderConfig,
): OidcIdentity | ClaimProblem {
  const subject = claims.sub;
  if (typeof subject !== 'string' || subject === '' || subject.length > 255)
    return { reason: 'subject_invalid', detail: 'the ID token has no usable sub claim' };
  const rawName = stringClaim(claims, provider.usernameClaim);
  if (rawName === undefined)
    return { reason: 'username_missing', detail: `the ID token has no ${provider.usernameClaim} claim` };
  const nameIsEmail = provider.usernameClaim === provider.emailClaim || provider.usernameClaim === 'email';
  // An unverified address is only a string the user typed: as a user name it could be anyone's.
  if (nameIsEmail && !isVerified(claims.email_verified))
    return { reason: 'email_unverified', detail: `${rawName} is not verified at the provider` };
  let username: string;
  try {
    username = validateUsername(rawName, provider.usernameClaim);
  } catch (error) {
    return {
      reason: 'username_invalid',
      detail: error instanceof CoveError ? error.message : 'not a valid Cove user name',
    };
  }
  const rawEmail = stringClaim(claims, provider.emailClaim);
  let email: string | null = null;
  if (rawEmail !== undefined && isVerified(claims.email_verified)) {
    try {
      email = validateEmail(rawEmail, provider.emailClaim);
    } catch {
      email = null;
    }
  }
  return {
    subject,
    username,
    email,
    groups: provider.groupsClaim ? groupsFromClaim(claims[provider.groupsClaim]) : null,
    mfa: mfaClaimed(claims, provider),
  };
}

export const isClaimProblem = (value: OidcIdentity | ClaimProblem): value is ClaimProblem =>
  'reason' in value;
