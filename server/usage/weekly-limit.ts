/**
 * A user's weekly shell-time limit from their groups: the most generous wins, like the home size.
 * A group without a limit is unlimited and so the most generous of all; no groups at all is the
 * default, which is unlimited too.
 */
export function weeklyLimit(groups: readonly { readonly weeklyUsageLimitS: number | null }[]): number | null {
  if (groups.length === 0) return null;
  let limit = 0;
  for (const group of groups) {
    if (group.weeklyUsageLimitS === null) return null;
    limit = Math.max(limit, group.weeklyUsageLimitS);
  }
  return limit;
}
