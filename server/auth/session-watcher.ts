/**
 * Re-validates long-lived connections (terminal WebSockets) against the store on a timer, so a
 * session that ended without an in-process event (deleted by another server instance, by hand in
 * the database, or expired while the clock jumped) still closes its sockets within one interval.
 * A connection bound to an account × permission set is also closed when that access is gone
 * (admin removed the assignment or the group membership). Events (`recheck`) make the common
 * cases immediate; the timer is the backstop.
 */
import type { Store } from '../store/store.js';

export interface WatchedConnection {
  readonly sessionIdHash: string;
  readonly userId: string;
  readonly accountId?: string;
  readonly permissionSet?: string;
  /** Called once when the connection must end; `code` is 4401 (session) or 4403 (access). */
  end(code: 4401 | 4403, reason: string): void;
}

export interface SessionWatcherOptions {
  readonly store: Store;
  readonly now: () => number;
  readonly intervalMs: number;
  readonly hasAccess: (userId: string, accountId: string, permissionSet: string) => Promise<boolean>;
  readonly onError?: (error: unknown) => void;
}

export const sessionEndedReason = 'Your session ended. Sign in again.';

export class SessionWatcher {
  private readonly watched = new Set<WatchedConnection>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: SessionWatcherOptions) {
    this.timer = setInterval(() => void this.recheck(), options.intervalMs);
    this.timer.unref();
  }

  /** Watches a connection until the returned disposable is disposed (or the connection ends). */
  watch(connection: WatchedConnection): { dispose(): void } {
    this.watched.add(connection);
    return { dispose: () => this.watched.delete(connection) };
  }

  get size(): number {
    return this.watched.size;
  }

  /** Checks every watched connection now (of `userIds` only, when given). */
  async recheck(userIds?: readonly string[]): Promise<void> {
    const only = userIds ? new Set(userIds) : undefined;
    const targets = [...this.watched].filter((c) => !only || only.has(c.userId));
    await Promise.all(
      targets.map((c) =>
        this.verdict(c).then(
          (verdict) => {
            if (!verdict || !this.watched.delete(c)) return;
            c.end(verdict.code, verdict.reason);
          },
          // A store hiccup is not a reason to cut a shell: the next round decides.
          (error: unknown) => this.options.onError?.(error),
        ),
      ),
    );
  }

  dispose(): void {
    clearInterval(this.timer);
    this.watched.clear();
  }

  private async verdict(c: WatchedConnection): Promise<{ code: 4401 | 4403; reason: string } | undefined> {
    const { store, now } = this.options;
    const session = await store.sessions.get(c.sessionIdHash);
    if (!session || session.stage !== 'full' || session.expiresAt <= now() || session.userId !== c.userId)
      return { code: 4401, reason: sessionEndedReason };
    const user = await store.users.get(c.userId);
    if (!user || user.disabled) return { code: 4401, reason: sessionEndedReason };
    if (c.accountId && c.permissionSet) {
      if (!(await this.options.hasAccess(c.userId, c.accountId, c.permissionSet)))
        return {
          code: 4403,
          reason: `You no longer have ${c.permissionSet} on account ${c.accountId}.`,
        };
    }
    return undefined;
  }
}
