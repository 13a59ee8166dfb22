/**
 * What a signed-in user must do before anything else: set a new password (first admin, reset) or
 * enroll TOTP (required for them or for everyone). Until then the only routes open to the session
 * are `/api/me` and `/api/auth/*`, which the sign-in page needs to finish those steps.
 */
import { errors, type CoveError } from '../errors.js';
import type { SessionRecord, UserRecord } from '../store/store.js';

/**
 * Whether Cove's own TOTP is required. Not for a session whose identity provider did MFA and is
 * trusted to (`trustIdpMfa`): the provider's second factor stands in for Cove's.
 */
export function mfaRequiredFor(
  user: UserRecord,
  requireMfaForAll: boolean,
  session?: Pick<SessionRecord, 'mfaByIdp'>,
): boolean {
  if (session?.mfaByIdp) return false;
  return requireMfaForAll || user.mfaRequired;
}

/** The error that blocks this user, or undefined when the session is fully usable. */
export function accessGate(
  user: UserRecord,
  requireMfaForAll: boolean,
  session?: Pick<SessionRecord, 'mfaByIdp'>,
): CoveError | undefined {
  if (user.mustChangePassword) return errors.passwordChangeRequired();
  if (mfaRequiredFor(user, requireMfaForAll, session) && !user.totpSecret)
    return errors.mfaEnrollmentRequired();
  return undefined;
}

/** Routes a gated session may still call (route patterns as Fastify registered them). */
export function isOpenWhileGated(routePattern: string): boolean {
  return routePattern === '/api/me' || routePattern.startsWith('/api/auth/');
}
