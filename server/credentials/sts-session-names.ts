/**
 * What Cove sends STS to name a session, within STS's rules, as pure functions so the rules are
 * tested by exact equality.
 *
 * - RoleSessionName and SourceIdentity: 2–64 characters of `[\w+=,.@-]` (ASCII). Every other
 *   character (a non-ASCII letter, say) becomes `-`, longer names are cut at 64, and a one-letter
 *   name is padded with `-` to two. Cove user names are already `[\p{L}\p{N}._@+-]`, so only
 *   non-ASCII letters ever change. Two users may end up with the same session name (`jörg` and
 *   `jürg` → `j-rg`); that only affects what CloudTrail shows, never whose credentials are whose
 *   (the broker's cache is keyed by user id). SourceIdentity may not start with `aws:`, which
 *   cannot happen here since `:` is not in the set.
 * - Session tags: keys and values of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, values at most 256 characters;
 *   other characters become `-`.
 */

const sessionNameMax = 64;
const sessionNameMin = 2;
/** STS's limit on a session tag value. */
export const tagValueMax = 256;
/** Joins group names in the `cove:groups` tag; rare in group names and allowed in tag values. */
export const groupSeparator = '/';

/** A user name as RoleSessionName / SourceIdentity. */
export function stsSessionName(username: string): string {
  const mapped = Array.from(username, (ch) => (/^[\w+=,.@-]$/.test(ch) ? ch : '-'))
    .join('')
    .slice(0, sessionNameMax);
  return mapped.padEnd(sessionNameMin, '-');
}

/** Any text as a session tag value (characters mapped, not yet truncated). */
export function stsTagValue(text: string): string {
  return Array.from(text, (ch) => (/^[\p{L}\p{Z}\p{N}_.:/=+\-@]$/u.test(ch) ? ch : '-')).join('');
}

/**
 * Group names for the `cove:groups` tag, joined with `/`, at most 256 characters: whole names are
 * dropped from the end rather than cut in half, so the tag never names a group that does not
 * exist; only a first name longer than 256 on its own is cut. Empty when there are no groups.
 */
export function stsGroupsTag(groups: readonly string[]): string {
  // Counted in code points, as STS counts characters.
  const length = (text: string): number => Array.from(text).length;
  let value = '';
  for (const group of groups.map(stsTagValue)) {
    const next = value === '' ? group : `${value}${groupSeparator}${group}`;
    if (length(next) <= tagValueMax) value = next;
    else return value === '' ? Array.from(group).slice(0, tagValueMax).join('') : value;
  }
  return value;
}
