/**
 * Sign-in throttling per account (the normalized user name, known or not, so the answer does not
 * reveal which exist) and per client IP, counted in the store so that every instance sees every
 * failure: spreading guesses over instances behind a proxy gains nothing. After the allowed
 * failures (counted until the window passes with no new failure), further attempts wait: the
 * base delay, doubling with each further failure, up to the maximum. There is no permanent
 * lockout, so an attacker can slow an account down but never lock its owner out. The table stays
 * bounded: `prune()` (a periodic job) deletes forgotten entries.
 */
import type { Store, ThrottlePolicy } from '../store/store.js';

export interface LoginThrottleLimits {
  readonly maxFailuresPerAccount: number;
  readonly maxFailuresPerIp: number;
  readonly throttleWindowS: number;
  readonly throttleBaseDelayS: number;
  readonly throttleMaxDelayS: number;
}

/** The store's scopes: one row per account, one per address. */
export const accountScope = 'sign-in.account';
export const ipScope = 'sign-in.ip';

export class LoginThrottle {
  private readonly accounts: ThrottlePolicy;
  private readonly ips: ThrottlePolicy;

  constructor(
    private readonly store: Pick<Store, 'throttles'>,
    limits: LoginThrottleLimits,
    private readonly now: () => number = Date.now,
  ) {
    const shared = {
      // Never shorter than the longest delay, so an attacker who waits out each delay stays at
      // the maximum instead of starting over.
      quietMs: Math.max(limits.throttleWindowS, limits.throttleMaxDelayS) * 1000,
      baseDelayMs: limits.throttleBaseDelayS * 1000,
      maxDelayMs: limits.throttleMaxDelayS * 1000,
    };
    this.accounts = { allowed: limits.maxFailuresPerAccount, ...shared };
    this.ips = { allowed: limits.maxFailuresPerIp, ...shared };
  }

  /** Seconds to wait before this account may try again from this IP, or undefined when it may try now. */
  async retryAfterS(account: string, ip: string): Promise<number | undefined> {
    const now = this.now();
    const waits = await Promise.all([
      this.store.throttles.retryAfter(accountScope, account, now),
      this.store.throttles.retryAfter(ipScope, ip, now),
    ]);
    const waitMs = Math.max(...waits);
    return waitMs > 0 ? Math.ceil(waitMs / 1000) : undefined;
  }

  async recordFailure(account: string, ip: string): Promise<void> {
    const now = this.now();
    await this.store.throttles.recordFailure(accountScope, account, now, this.accounts);
    await this.store.throttles.recordFailure(ipScope, ip, now, this.ips);
  }

  /**
   * A completed sign-in clears the account's failures. The IP's stay: otherwise one valid
   * account would let an address reset its own counter between guesses at others.
   */
  recordSuccess(account: string): Promise<void> {
    return this.store.throttles.reset(accountScope, account);
  }

  /** Deletes forgotten entries (every instance's); returns how many went. */
  prune(): Promise<number> {
    return this.store.throttles.prune(this.now());
  }
}
