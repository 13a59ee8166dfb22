/**
 * The repository an "Open in Cove" link names (`git=`), checked before anything is cloned: https
 * only (no `file:`, `ssh:`, `ext::` or `javascript:`), no user name or password in the URL, no
 * hidden characters, a configured prefix, and a last path segment that makes a plain folder name
 * in the home. Pure, so the rules are unit-tested one by one.
 */

/** A repository a link may clone, and the folder in the home it goes to. */
export interface GitLink {
  /** The URL as git gets it (normalised by the WHATWG parser). */
  readonly url: string;
  readonly folder: string;
}

export type GitLinkProblem = 'invalid' | 'scheme' | 'credentials' | 'not-allowed' | 'folder';

export type GitLinkCheck =
  | { readonly ok: true; readonly link: GitLink }
  | { readonly ok: false; readonly problem: GitLinkProblem; readonly scheme?: string };

export const maxGitUrlLength = 2048;

// Control, format (bidi overrides, zero-width), separators and any white space.
const hiddenOrSpace = /[\p{Cc}\p{Cf}\p{Z}\s]/u;
const folderPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

export function checkGitLink(raw: string, allowedPrefixes: readonly string[]): GitLinkCheck {
  if (raw.length === 0 || raw.length > maxGitUrlLength || hiddenOrSpace.test(raw))
    return { ok: false, problem: 'invalid' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, problem: 'invalid' };
  }
  if (url.protocol !== 'https:') return { ok: false, problem: 'scheme', scheme: url.protocol.slice(0, 20) };
  // A token in a link would be sent to everyone who opens it, and show on the card.
  if (url.username !== '' || url.password !== '') return { ok: false, problem: 'credentials' };
  if (url.search !== '' || url.hash !== '' || url.hostname === '') return { ok: false, problem: 'invalid' };
  const href = url.href;
  if (!allowedPrefixes.some((prefix) => href.startsWith(prefix)))
    return { ok: false, problem: 'not-allowed' };
  const last =
    url.pathname
      .split('/')
      .filter((segment) => segment !== '')
      .at(-1) ?? '';
  const folder = last.endsWith('.git') ? last.slice(0, -4) : last;
  if (!folderPattern.test(folder) || folder === '..') return { ok: false, problem: 'folder' };
  return { ok: true, link: { url: href, folder } };
}
