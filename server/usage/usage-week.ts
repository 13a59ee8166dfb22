/**
 * Usage weeks: Monday 00:00 UTC to the next Monday 00:00 UTC, the same for every user whatever
 * their time zone, so "it resets on Monday" means one instant for everyone.
 */
const dayMs = 86_400_000;
export const weekMs = 7 * dayMs;

export interface UsageWeek {
  /** Monday 00:00 UTC, epoch ms. */
  readonly start: number;
  /** The next Monday 00:00 UTC, epoch ms: when the count starts again. */
  readonly end: number;
}

export function usageWeek(time: number): UsageWeek {
  const midnight = Math.floor(time / dayMs) * dayMs;
  const daysSinceMonday = (new Date(midnight).getUTCDay() + 6) % 7;
  const start = midnight - daysSinceMonday * dayMs;
  return { start, end: start + weekMs };
}

/** Cuts [from, to) at week boundaries: the seconds of each week it touches, oldest first. */
export function splitByWeek(from: number, to: number): { weekStart: number; seconds: number }[] {
  const parts: { weekStart: number; seconds: number }[] = [];
  let cursor = from;
  while (cursor < to) {
    const week = usageWeek(cursor);
    const end = Math.min(week.end, to);
    parts.push({ weekStart: week.start, seconds: (end - cursor) / 1000 });
    cursor = end;
  }
  return parts;
}
