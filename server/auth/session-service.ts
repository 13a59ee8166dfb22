/**
 * Portal sessions. The cookie carries a random 256-bit token; the store keeps only its SHA-256.
 * A session is either `mfa` (password accepted, TOTP pending: it can do nothing but verify) or
 * `full`. Every auth step rotates the token, so a planted cookie never becomes a signed-in one.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { SessionRecord, SessionStage, Store } from '../store/store.js';

/** How a session signed in through an identity provider; absent for a password sign-in. */
export interface SessionFederation {
  readonly providerId: string;
  readonly mfaByIdp: boolean;
  readonly idToken: string | null;
}

export interface SessionTimes {
  readonly sessionTtlS: number;
  readonly mfaPendingTtlS: number;
}

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
export const newToken = (): string => randomBytes(32).toString('base64url');

export class SessionService {
  private readonly revokedListeners = new Set<(idHashes: readonly string[], userId: string) => void>();

  constructor(
    private readonly store: Store,
    private readonly times: SessionTimes,
    private readonly now: () => number = Date.now,
  ) {}

  private ttlMs(stage: SessionStage): number {
    return (stage === 'mfa' ? this.times.mfaPendingTtlS : this.times.sessionTtlS) * 1000;
  }

  /** Starts a session; returns the cookie value. */
  async create(
    userId: string,
    stage: SessionStage,
    federation?: SessionFederation,
  ): Promise<{ token: string; session: SessionRecord }> {
    const token = newToken();
    const now = this.now();
    const session: SessionRecord = {
      idHash: hashToken(token),
      userId,
      stage,
      createdAt: now,
      expiresAt: now + this.ttlMs(stage),
      mfaFailures: 0,
      providerId: federation?.providerId ?? null,
      mfaByIdp: federation?.mfaByIdp ?? false,
      idToken: federation?.idToken ?? null,
    };
    await this.store.sessions.create(session);
    return { token, session };
  }

  /** The live session for a cookie value, or undefined (expired ones are deleted on sight). */
  async resolve(token: string | undefined): Promise<SessionRecord | undefined> {
    if (!token || token.length > 200) return undefined;
    const session = await this.store.sessions.get(hashToken(token));
    if (!session) return undefined;
    if (session.expiresAt <= this.now()) {
      await this.store.sessions.delete(session.idHash);
      return undefined;
    }
    return session;
  }

  /** Moves the session to a fresh token (and stage); the old token stops working at once. */
  async rotate(
    session: SessionRecord,
    stage: SessionStage,
  ): Promise<{ token: string; session: SessionRecord } | undefined> {
    const token = newToken();
    const now = this.now();
    const next = { idHash: hashToken(token), stage, createdAt: now, expiresAt: now + this.ttlMs(stage) };
    if (!(await this.store.sessions.rotate(session.idHash, next))) return undefined;
    this.emitRevoked([session.idHash], session.userId);
    return { token, session: { ...session, ...next, mfaFailures: 0 } };
  }

  async destroy(session: SessionRecord): Promise<void> {
    await this.store.sessions.delete(session.idHash);
    this.emitRevoked([session.idHash], session.userId);
  }

  /** Ends every session of a user (disable, password reset); returns the ended ids (hashes). */
  async destroyAllFor(userId: string): Promise<readonly string[]> {
    const ids = await this.store.sessions.deleteForUser(userId);
    if (ids.length > 0) this.emitRevoked(ids, userId);
    return ids;
  }

  /**
   * Called when sessions end, so open WebSockets bound to them can close (4401).
   * Returns a disposable.
   */
  onRevoked(listener: (idHashes: readonly string[], userId: string) => void): { dispose(): void } {
    this.revokedListeners.add(listener);
    return { dispose: () => this.revokedListeners.delete(listener) };
  }

  private emitRevoked(idHashes: readonly string[], userId: string): void {
    for (const listener of this.revokedListeners) listener(idHashes, userId);
  }
}
