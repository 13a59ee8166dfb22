/**
 * One-time invite links: a user without a password (new, or reset by an admin) sets one through
 * `/login?invite=<token>`. Only the token's SHA-256 is stored, so a database leak hands out no
 * invites; a user has at most one live invite, so a reset makes older links useless.
 */
import type { FastifyInstance } from 'fastify';
import type { InviteRecord, Store, StoreRepositories, UserRecord } from '../store/store.js';
import { hashToken, newToken } from './session-service.js';

export interface CreatedInvite {
  /** Goes into the link only; never stored. */
  readonly token: string;
  /** `${publicUrl}/login?invite=<token>` */
  readonly url: string;
}

/**
 * Creates a fresh invite for the user (replacing any older one) and returns its link. `store` is
 * the caller's transaction when there is one.
 */
export async function createInvite(
  app: FastifyInstance,
  userId: string,
  store: StoreRepositories = app.store,
): Promise<CreatedInvite> {
  const token = newToken();
  await store.invites.deleteForUser(userId);
  await store.invites.create({
    tokenHash: hashToken(token),
    userId,
    expiresAt: app.now() + app.config.auth.inviteTtlS * 1000,
  });
  return { token, url: `${app.config.publicUrl}/login?invite=${encodeURIComponent(token)}` };
}

export interface LiveInvite {
  readonly invite: InviteRecord;
  readonly user: UserRecord;
}

/**
 * The invite behind a token if it can still be used: unknown, used, expired invites and those of
 * disabled or deleted users all look the same to the caller.
 */
export async function findLiveInvite(
  store: Store,
  token: string,
  now: number,
): Promise<LiveInvite | undefined> {
  const invite = await store.invites.get(hashToken(token));
  if (!invite || invite.usedAt !== null || invite.expiresAt <= now) return undefined;
  const user = await store.users.get(invite.userId);
  if (!user || user.disabled) return undefined;
  return { invite, user };
}
