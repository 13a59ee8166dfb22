/**
 * Sign-in throttling, in memory, per account (the normalized user name, known or not, so the
 * answer does not reveal which exist) and per client IP. After the allowed failures (counted until
 * the window passes with no new failure), further attempts wait: the base delay, doubling with
 * each further failure, up to the maximum. There is no permanent lockout, so an attacker can slow an account down but never
 * lock its owner out. Memory is bounded: the least recently touched entries go first.
 */

export interface LoginThrottleLimits {
  readonly maxFailuresPerAccount: number;
  readonly maxFailuresPerIp: number;
  readonly throttleWindowS: number;
  readonly throttleBaseDelayS: number;
  readonly throttleMaxDelayS: number;
}

interface Counter {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number;
}

/** One keyed set of counters with its own limit. */
class FailureCounters {
  private readonly counters = new Map<string, Counter>();
  /**
   * Failures are forgotten after this long without a new one. Never shorter than the longest
   * delay, so an attacker who waits out each delay stays at the maximum instead of starting over.
   */
  private readonly quietMs: number;

  constructor(
    private readonly limit: number,
    private readonly limits: LoginThrottleLimits,
    private readonly maxEntries: number,
  ) {
    this.quietMs = Math.max(limits.throttleWindowS, limits.throttleMaxDelayS) * 1000;
  }

  get size(): number {
    return this.counters.size;
  }

  retryAfterMs(key: string, now: number): number {
    const counter = this.counters.get(key);
    return counter && counter.blockedUntil > now ? counter.blockedUntil - now : 0;
  }

  recordFailure(key: string, now: number): void {
    const counter = this.counters.get(key) ?? { failures: 0, lastFailureAt: now, blockedUntil: 0 };
    if (this.isForgotten(counter, now)) counter.failures = 0;
    counter.failures += 1;
    counter.lastFailureAt = now;
    const excess = counter.failures - this.limit;
    if (excess >= 0) {
      // Capped exponent: past ~30 doublings every sane maximum has been reached anyway.
      const delayS = Math.min(
        this.limits.throttleBaseDelayS * 2 ** Math.min(excess, 30),
        this.limits.throttleMaxDelayS,
      );
      counter.blockedUntil = Math.max(counter.blockedUntil, now + delayS * 1000);
    }
    this.touch(key, counter, now);
  }

  reset(key: string): void {
    this.counters.delete(key);
  }

  private isForgotten(counter: Counter, now: number): boolean {
    return now - counter.lastFailureAt > this.quietMs && counter.blockedUntil <= now;
  }

  private touch(key: string, counter: Counter, now: number): void {
    // Re-inserting keeps the Map in least-recently-touched order.
    this.counters.delete(key);
    if (this.counters.size >= this.maxEntries) this.evict(now);
    this.counters.set(key, counter);
  }

  private evict(now: number): void {
    for (const [key, counter] of this.counters) if (this.isForgotten(counter, now)) this.counters.delete(key);
    if (this.counters.size < this.maxEntries) return;
    const oldest = this.counters.keys().next();
    if (!oldest.done) this.counters.delete(oldest.value);
  }
}

export class LoginThrottle {
  private readonly accounts: FailureCounters;
  private readonly ips: FailureCounters;

  constructor(
    limits: LoginThrottleLimits,
    private readonly now: () => number = Date.now,
    maxEntries = 10_000,
  ) {
    this.accounts = new FailureCounters(limits.maxFailuresPerAccount, limits, maxEntries);
    this.ips = new FailureCounters(limits.maxFailuresPerIp, limits, maxEntries);
  }

  /** Seconds to wait before this account may try again from this IP, or undefined when it may try now. */
  retryAfterS(account: string, ip: string): number | undefined {
    const now = this.now();
    const waitMs = Math.max(this.accounts.retryAfterMs(account, now), this.ips.retryAfterMs(ip, now));
    return waitMs > 0 ? Math.ceil(waitMs / 1000) : undefined;
  }

  recordFailure(account: string, ip: string): void {
    const now = this.now();
    this.accounts.recordFailure(account, now);
    this.ips.recordFailure(ip, now);
  }

  /**
   * A completed sign-in clears the account's failures. The IP's stay: otherwise one valid
   * account would let an address reset its own counter between guesses at others.
   */
  recordSuccess(account: string): void {
    this.accounts.reset(account);
  }

  /** Entries held, for tests and metrics. */
  get size(): { accounts: number; ips: number } {
    return { accounts: this.accounts.size, ips: this.ips.size };
  }
}
