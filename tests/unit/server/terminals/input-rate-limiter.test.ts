import { describe, expect, it } from 'vitest';
import { InputRateLimiter } from '../../../../server/terminals/input-rate-limiter.js';

describe('InputRateLimiter', () => {
  const limits = { framesPerS: 10, frameBurst: 20, bytesPerS: 100, byteBurst: 200 };

  it('allows a burst, then refuses, then refills with time', () => {
    let now = 0;
    const limiter = new InputRateLimiter(limits, () => now);
    for (let i = 0; i < 20; i++) expect(limiter.take(1)).toBe(true);
    expect(limiter.take(1)).toBe(false);
    now += 1000;
    expect(limiter.take(1)).toBe(true);
  });

  it('limits bytes separately from frames', () => {
    let now = 0;
    const limiter = new InputRateLimiter(limits, () => now);
    expect(limiter.take(150)).toBe(true);
    expect(limiter.take(60)).toBe(false);
    now += 2000;
    expect(limiter.take(100)).toBe(true);
  });
});
