import { describe, expect, it } from 'vitest';
import { LoginThrottle, type LoginThrottleLimits } from '../../../../server/auth/login-throttle.js';

const limits: LoginThrottleLimits = {
  maxFailuresPerAccount: 3,
  maxFailuresPerIp: 10,
  throttleWindowS: 600,
  throttleBaseDelayS: 10,
  throttleMaxDelayS: 100,
};

function setup(overrides: Partial<LoginThrottleLimits> = {}, maxEntries?: number) {
  const clock = { now: 1_000_000 };
  const throttle = new LoginThrottle({ ...limits, ...overrides }, () => clock.now, maxEntries);
  return { clock, throttle };
}

describe('LoginThrottle', () => {
  it('lets an account try until the limit, then asks it to wait the base delay', () => {
    const { throttle } = setup();
    throttle.recordFailure('alice', '10.0.0.1');
    throttle.recordFailure('alice', '10.0.0.1');
    expect(throttle.retryAfterS('alice', '10.0.0.1')).toBeUndefined();
    throttle.recordFailure('alice', '10.0.0.1');
    expect(throttle.retryAfterS('alice', '10.0.0.1')).toBe(10);
    // The account is throttled from every address; other accounts are not.
    expect(throttle.retryAfterS('alice', '10.9.9.9')).toBe(10);
    expect(throttle.retryAfterS('bob', '10.9.9.9')).toBeUndefined();
  });

  it('doubles the delay per further failure up to the maximum', () => {
    const { clock, throttle } = setup();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      throttle.recordFailure('alice', `10.0.0.${i}`);
      const wait = throttle.retryAfterS('alice', '10.1.1.1');
      if (wait !== undefined) {
        delays.push(wait);
        clock.now += wait * 1000;
      }
    }
    expect(delays).toEqual([10, 20, 40, 80, 100, 100]);
  });

  it('counts down and frees the account when the delay has passed', () => {
    const { clock, throttle } = setup();
    for (let i = 0; i < 3; i++) throttle.recordFailure('alice', '10.0.0.1');
    clock.now += 4_500;
    expect(throttle.retryAfterS('alice', '10.0.0.1')).toBe(6);
    clock.now += 5_500;
    expect(throttle.retryAfterS('alice', '10.0.0.1')).toBeUndefined();
  });

  it('forgets failures after a quiet window', () => {
    const { clock, throttle } = setup();
    throttle.recordFailure('alice', '10.0.0.1');
    throttle.recordFailure('alice', '10.0.0.1');
    clock.now += 600_001;
    throttle.recordFailure('alice', '10.0.0.1');
    expect(throttle.retryAfterS('alice', '10.0.0.1')).toBeUndefined();
  });

  it('a success clears the account, not the IP', () => {
    const { throttle } = setup({ maxFailuresPerIp: 4 });
    for (let i = 0; i < 3; i++) throttle.recordFailure('alice', '10.0.0.1');
    throttle.recordSuccess('alice');
    expect(throttle.retryAfterS('alice', '10.0.0.2')).toBeUndefined();
    throttle.recordFailure('carol', '10.0.0.1');
    expect(throttle.retryAfterS('dave', '10.0.0.1')).toBe(10);
    expect(throttle.retryAfterS('dave', '10.0.0.2')).toBeUndefined();
  });

  it('throttles an IP spraying many accounts', () => {
    const { throttle } = setup();
    for (let i = 0; i < 10; i++) throttle.recordFailure(`user${i}`, '10.0.0.66');
    expect(throttle.retryAfterS('fresh-user', '10.0.0.66')).toBe(10);
    expect(throttle.retryAfterS('fresh-user', '10.0.0.67')).toBeUndefined();
  });

  it('keeps memory bounded, evicting forgotten entries first, then the least recently touched', () => {
    const { clock, throttle } = setup({ maxFailuresPerAccount: 1 }, 100);
    for (let i = 0; i < 1000; i++) throttle.recordFailure(`spray${i}`, `10.0.${i >> 8}.${i & 255}`);
    expect(throttle.size.accounts).toBeLessThanOrEqual(100);
    expect(throttle.size.ips).toBeLessThanOrEqual(100);
    // The most recent entries survive, so an account under attack right now stays throttled.
    expect(throttle.retryAfterS('spray999', '192.0.2.1')).toBe(10);
    clock.now += 700_000;
    throttle.recordFailure('late', '192.0.2.2');
    expect(throttle.size.accounts).toBe(1);
  });
});
