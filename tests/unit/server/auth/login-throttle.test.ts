import { afterEach, describe, expect, it } from 'vitest';
import {
  LoginThrottle,
  accountScope,
  ipScope,
  type LoginThrottleLimits,
} from '../../../../server/auth/login-throttle.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';

const limits: LoginThrottleLimits = {
  maxFailuresPerAccount: 3,
  maxFailuresPerIp: 10,
  throttleWindowS: 600,
  throttleBaseDelayS: 10,
  throttleMaxDelayS: 100,
};

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

function setup(overrides: Partial<LoginThrottleLimits> = {}) {
  const clock = { now: 1_000_000 };
  const store = new SqliteStore(':memory:');
  stores.push(store);
  const throttle = new LoginThrottle(store, { ...limits, ...overrides }, () => clock.now);
  return { clock, store, throttle };
}

describe('LoginThrottle', () => {
  it('lets an account try until the limit, then asks it to wait the base delay', async () => {
    const { throttle } = setup();
    await throttle.recordFailure('alice', '10.0.0.1');
    await throttle.recordFailure('alice', '10.0.0.1');
    expect(await throttle.retryAfterS('alice', '10.0.0.1')).toBeUndefined();
    await throttle.recordFailure('alice', '10.0.0.1');
    expect(await throttle.retryAfterS('alice', '10.0.0.1')).toBe(10);
    // The account is throttled from every address; other accounts are not.
    expect(await throttle.retryAfterS('alice', '10.9.9.9')).toBe(10);
    expect(await throttle.retryAfterS('bob', '10.9.9.9')).toBeUndefined();
  });

  it('doubles the delay per further failure up to the maximum', async () => {
    const { clock, throttle } = setup();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      await throttle.recordFailure('alice', `10.0.0.${i}`);
      const wait = await throttle.retryAfterS('alice', '10.1.1.1');
      if (wait !== undefined) {
        delays.push(wait);
        clock.now += wait * 1000;
      }
    }
    expect(delays).toEqual([10, 20, 40, 80, 100, 100]);
  });

  it('counts down and frees the account when the delay has passed', async () => {
    const { clock, throttle } = setup();
    for (let i = 0; i < 3; i++) await throttle.recordFailure('alice', '10.0.0.1');
    clock.now += 4_500;
    expect(await throttle.retryAfterS('alice', '10.0.0.1')).toBe(6);
    clock.now += 5_500;
    expect(await throttle.retryAfterS('alice', '10.0.0.1')).toBeUndefined();
  });

  it('forgets failures after a quiet window, and not a millisecond before', async () => {
    const { clock, throttle } = setup();
    await throttle.recordFailure('alice', '10.0.0.1');
    await throttle.recordFailure('alice', '10.0.0.1');
    clock.now += 600_001;
    await throttle.recordFailure('alice', '10.0.0.1');
    expect(await throttle.retryAfterS('alice', '10.0.0.1')).toBeUndefined();
    await throttle.recordFailure('alice', '10.0.0.1');
    clock.now += 600_000;
    await throttle.recordFailure('alice', '10.0.0.1');
    expect(await throttle.retryAfterS('alice', '10.0.0.1')).toBe(10);
  });

  it('a success clears the account, not the IP', async () => {
    const { throttle } = setup({ maxFailuresPerIp: 4 });
    for (let i = 0; i < 3; i++) await throttle.recordFailure('alice', '10.0.0.1');
    await throttle.recordSuccess('alice');
    expect(await throttle.retryAfterS('alice', '10.0.0.2')).toBeUndefined();
    await throttle.recordFailure('carol', '10.0.0.1');
    expect(await throttle.retryAfterS('dave', '10.0.0.1')).toBe(10);
    expect(await throttle.retryAfterS('dave', '10.0.0.2')).toBeUndefined();
  });

  it('throttles an IP spraying many accounts', async () => {
    const { throttle } = setup();
    for (let i = 0; i < 10; i++) await throttle.recordFailure(`user${i}`, '10.0.0.66');
    expect(await throttle.retryAfterS('fresh-user', '10.0.0.66')).toBe(10);
    expect(await throttle.retryAfterS('fresh-user', '10.0.0.67')).toBeUndefined();
  });

  it('stays bounded: prune deletes forgotten entries and keeps the ones still counting', async () => {
    const { clock, store, throttle } = setup({ maxFailuresPerAccount: 1 });
    for (let i = 0; i < 100; i++) await throttle.recordFailure(`spray${i}`, `10.0.0.${i}`);
    // Nothing is forgotten yet: the accounts under attack right now stay throttled.
    expect(await throttle.prune()).toBe(0);
    expect(await throttle.retryAfterS('spray99', '192.0.2.1')).toBe(10);
    clock.now += 600_001;
    await throttle.recordFailure('late', '192.0.2.2');
    // 100 accounts and 100 addresses went; the late account and address stay.
    expect(await throttle.prune()).toBe(200);
    expect(await throttle.prune()).toBe(0);
    expect(await store.throttles.retryAfter(accountScope, 'late', clock.now)).toBe(10_000);
    expect(await store.throttles.retryAfter(ipScope, '192.0.2.2', clock.now)).toBe(0);
    await throttle.recordFailure('late', '192.0.2.2');
    expect(await throttle.retryAfterS('late', '192.0.2.3')).toBe(20);
  });
});
