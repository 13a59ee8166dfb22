/** The words the portal and the refusal use for shell time (server/protocol/api.ts). */
import { describe, expect, it } from 'vitest';
import { formatUsageDuration, formatUtcTime } from '../../../../server/protocol/api.js';

describe('formatUsageDuration', () => {
  it.each([
    [0, '0 min'],
    [59, '0 min'],
    [45 * 60, '45 min'],
    [3600, '1 h'],
    [3 * 3600 + 12 * 60 + 59, '3 h 12 min'],
    [50 * 3600, '50 h'],
    [-5, '0 min'],
  ])('%i s is "%s"', (seconds, text) => {
    expect(formatUsageDuration(seconds)).toBe(text);
  });
});

describe('formatUtcTime', () => {
  it('writes the reset time the same in every locale and time zone', () => {
    expect(formatUtcTime('2026-11-30T00:00:00.000Z')).toBe('Mon 30 Nov 2026 00:00 UTC');
    expect(formatUtcTime(Date.parse('2027-01-04T09:05:00Z'))).toBe('Mon 4 Jan 2027 09:05 UTC');
  });
});
