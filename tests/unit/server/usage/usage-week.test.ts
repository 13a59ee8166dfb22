import { describe, expect, it } from 'vitest';
import { splitByWeek, usageWeek } from '../../../../server/usage/usage-week.js';

const at = (iso: string) => Date.parse(iso);

describe('usageWeek', () => {
  it.each([
    ['2026-11-23T00:00:00.000Z', '2026-11-23T00:00:00.000Z'], // Monday midnight starts its own week
    ['2026-11-23T00:00:00.001Z', '2026-11-23T00:00:00.000Z'],
    ['2026-11-26T13:05:00.000Z', '2026-11-23T00:00:00.000Z'], // Thursday
    ['2026-11-29T23:59:59.999Z', '2026-11-23T00:00:00.000Z'], // Sunday, last millisecond
    ['2026-11-30T00:00:00.000Z', '2026-11-30T00:00:00.000Z'], // the next Monday
    ['2026-12-31T12:00:00.000Z', '2026-12-28T00:00:00.000Z'], // across a year end
    ['2027-01-03T23:00:00.000Z', '2026-12-28T00:00:00.000Z'],
    ['2028-03-01T08:00:00.000Z', '2028-02-28T00:00:00.000Z'], // leap year
  ])('puts %s in the week of %s (Monday 00:00 UTC)', (time, start) => {
    const week = usageWeek(at(time));
    expect(new Date(week.start).toISOString()).toBe(start);
    expect(week.end - week.start).toBe(7 * 86_400_000);
  });

  it('is UTC whatever the local time zone says: Sunday 23:30 in New York is already Monday in UTC', () => {
    // 2026-11-29 23:30 EST = 2026-11-30 04:30 UTC
    expect(new Date(usageWeek(at('2026-11-30T04:30:00.000Z')).start).toISOString()).toBe(
      '2026-11-30T00:00:00.000Z',
    );
  });
});

describe('splitByWeek', () => {
  it('keeps an interval inside one week whole', () => {
    expect(splitByWeek(at('2026-11-26T10:00:00Z'), at('2026-11-26T11:00:00Z'))).toEqual([
      { weekStart: at('2026-11-23T00:00:00Z'), seconds: 3600 },
    ]);
  });

  it('cuts an interval at Monday 00:00 UTC', () => {
    expect(splitByWeek(at('2026-11-29T23:59:00Z'), at('2026-11-30T00:01:30Z'))).toEqual([
      { weekStart: at('2026-11-23T00:00:00Z'), seconds: 60 },
      { weekStart: at('2026-11-30T00:00:00Z'), seconds: 90 },
    ]);
  });

  it('gives nothing for an empty or backwards interval', () => {
    expect(splitByWeek(at('2026-11-26T10:00:00Z'), at('2026-11-26T10:00:00Z'))).toEqual([]);
    expect(splitByWeek(at('2026-11-26T10:00:00Z'), at('2026-11-26T09:00:00Z'))).toEqual([]);
  });
});
