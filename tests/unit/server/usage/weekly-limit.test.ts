import { describe, expect, it } from 'vitest';
import { weeklyLimit } from '../../../../server/usage/weekly-limit.js';

const h = 3600;
const groups = (...limits: (number | null)[]) => limits.map((weeklyUsageLimitS) => ({ weeklyUsageLimitS }));

describe('weeklyLimit', () => {
  it.each([
    ['no groups: the default, unlimited', groups(), null],
    ['one group with a limit', groups(50 * h), 50 * h],
    ['one group without a limit', groups(null), null],
    ['the most generous of several limits', groups(10 * h, 50 * h, 20 * h), 50 * h],
    ['any group without a limit makes it unlimited', groups(10 * h, null, 50 * h), null],
    ['a zero limit alone: no shell time', groups(0), 0],
    ['a zero limit next to a real one: the real one', groups(0, 5 * h), 5 * h],
  ])('%s', (_name, input, expected) => {
    expect(weeklyLimit(input)).toBe(expected);
  });
});
