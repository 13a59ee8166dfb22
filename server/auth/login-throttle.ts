/**
 * Sign-in throttling, in memory, per account (the normalized user name, known or not, so the
 * answer does not reveal which exist) and per client IP. After the allowed failures within the
 * window, further attempts wait: the base delay, doubling with each further failure, up to the
 * maximum. There is no permanent lockout, so an attacker can slow an account down but never
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
  /** Failure times (epoch ms) inside the window, oldest first. */
  failures: number[];
  blockedUntil: number;
}

/** One keyed set of counters with its own limit. */
class FailureCounters {
  private readonly counters = new Map<string, Counter>();

  constructor(
    private readonly limit: number,
    private readonly limits: LoginThrottleLimits,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.counters.size;
  }

  retryAfterMs(key: string, now: number): number {
    const counter = this.counters.get(key);
    return counter && counter.blockedUntil > now ? counter.blockedUntil - now : 0;
  }

  recordFailure(key: string, now: number): void {
    const counter = this.counters.get(key) ?? { failures: [], blockedUntil: 0 };
    this.prune(counter, now);
    counter.failures.push(now);
    // Only the count matters past the point where the delay reaches its maximum.
    if (counter.failures.length > this.limit + 32) counter.failures.shift();
    const excess = counter.failures.length - this.limit;
    if (excess >= 0) {
      const delayS = Math.min(this.limits.throttleBaseDelayS * 2 ** excess, this.limits.throttleMaxDelayS);
      counter.blockedUntil = Math.max(counter.blockedUntil, now + delayS * 1000);
    }
    this.touch(key, counter, now);
  }

  reset(key: string): void {
    this.counters.delete(key);
  }

  private prune(counter: Counter, now: number): void {
    const since = now - this.limits.throttleWindowS * 1000;
    while (counter.failures.length > 0 && (counter.failures[0] ?? 0) <= since) counter.failures.shift();
  }

  private touch(key: string, counter: Counter, now: number): void {
    // Re-inserting keeps the Map in least-recently-touched order.
    this.counters.delete(key);
    if (this.counters.size >= this.maxEntries) this.evict(now);
    this.counters.set(key, counter);
  }

  private evict(now: number): void {
    for (const [key, counter] of this.counters) {
      this.prune(counter, now);
      if (counter.failures.length === 0 && counter.blockedUntil <= now) this.counters.delete(key);
    }
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
