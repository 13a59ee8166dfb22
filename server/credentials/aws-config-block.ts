/**
 * The Cove-managed block of `~/.aws/config`: one profile per assignment, between two marker lines,
 * rewritten at every terminal start. Pure, so the rules are tested by exact equality:
 * - everything outside the markers is kept byte for byte (a file without a final newline gets
 *   one before a new block, the only byte ever added to the user's part);
 * - the block keeps the file's line endings (CRLF when the file uses them);
 * - a profile the user wrote themselves (outside the block) wins: the managed one is skipped
 *   and a comment in the block says so;
 * - stray marker lines (a BEGIN without its END) are dropped and a fresh block is appended, so
 *   a damaged block can never make a later rewrite swallow the user's own lines.
 */

export const BEGIN_MARKER = '# BEGIN cove-managed profiles (do not edit)';
export const END_MARKER = '# END cove-managed profiles';
export const CREDENTIAL_PROCESS = '/usr/local/bin/cove-credential-process';

export interface ManagedProfile {
  readonly accountId: string;
  readonly accountName: string;
  readonly permissionSet: string;
  readonly region: string;
}

/** `<account-name>-<permission-set>`, lower case, `[a-z0-9-]` only. */
export function profileName(accountName: string, permissionSet: string): string {
  const slug = (value: string): string =>
    value
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '');
  const account = slug(accountName);
  const set = slug(permissionSet);
  return [account, set].filter(Boolean).join('-');
}

const sectionHeader = /^\s*\[\s*(?:profile\s+)?([^\]]+?)\s*\]\s*$/;

/** Profile names declared by `[profile x]` / `[x]` headers in these lines. */
function declaredProfiles(lines: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const line of lines) {
    const match = sectionHeader.exec(line);
    if (match?.[1]) names.add(match[1]);
  }
  return names;
}

interface Line {
  /** Without its terminator. */
  readonly text: string;
  /** Including its terminator. */
  readonly raw: string;
}

function splitLines(content: string): Line[] {
  const lines: Line[] = [];
  const pattern = /([^\n]*?)(\r?\n|$)/gy;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < content.length && (match = pattern.exec(content)) !== null) {
    lines.push({ text: match[1] ?? '', raw: match[0] });
  }
  return lines;
}

const isMarker = (text: string, marker: string): boolean => text.trim() === marker;

/** The new file content; equal to `existing` when nothing needs to change. */
export function rewriteAwsConfig(existing: string, profiles: readonly ManagedProfile[]): string {
  const eol = existing.includes('\r\n') ? '\r\n' : '\n';
  const lines = splitLines(existing);
  const begin = lines.findIndex((l) => isMarker(l.text, BEGIN_MARKER));
  const end = begin < 0 ? -1 : lines.findIndex((l, i) => i > begin && isMarker(l.text, END_MARKER));

  let before: Line[];
  let after: Line[];
  if (begin >= 0 && end > begin) {
    before = lines.slice(0, begin);
    after = lines.slice(end + 1);
  } else {
    before = lines.filter((l) => !isMarker(l.text, BEGIN_MARKER) && !isMarker(l.text, END_MARKER));
    after = [];
    if (profiles.length === 0 && before.length === lines.length) return existing;
  }

  const userProfiles = declaredProfiles([...before, ...after].map((l) => l.text));
  const block = renderBlock(profiles, userProfiles);

  let head = before.map((l) => l.raw).join('');
  if (head.length > 0 && !head.endsWith('\n')) head += eol;
  return head + block.join(eol) + eol + after.map((l) => l.raw).join('');
}

function renderBlock(profiles: readonly ManagedProfile[], userProfiles: ReadonlySet<string>): string[] {
  const out = [
    BEGIN_MARKER,
    '# Written by Cove at every new terminal: one profile per account and permission set you',
    '# have. Put your own settings outside these lines; a profile of yours with the same name wins.',
  ];
  const taken = new Set<string>();
  for (const profile of profiles) {
    let name = profileName(profile.accountName, profile.permissionSet);
    // Two accounts whose names slug the same keep apart by id.
    if (name === '' || taken.has(name)) name = [name, profile.accountId].filter(Boolean).join('-');
    if (taken.has(name)) continue;
    taken.add(name);
    if (userProfiles.has(name)) {
      out.push(`# [profile ${name}] skipped: your own profile of that name is used instead.`);
      continue;
    }
    out.push(
      '',
      `[profile ${name}]`,
      `region = ${profile.region}`,
      `credential_process = ${CREDENTIAL_PROCESS} ${profile.accountId} ${profile.permissionSet}`,
    );
  }
  out.push(END_MARKER);
  return out;
}
