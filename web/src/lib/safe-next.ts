/**
 * Where to go after signing in. Only a local path is allowed (starts with one `/`, no scheme, no
 * backslash tricks), so a crafted `?next=` cannot send the user to another site.
 */
export function safeNext(raw: string | null | undefined): string {
  if (!raw) return '/';
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return '/';
  if ([...raw].some((c) => c === '\\' || c.charCodeAt(0) < 0x20)) return '/';
  try {
    // Resolve against a dummy origin: anything that escapes it is not a local path.
    const url = new URL(raw, 'http://cove.invalid');
    if (url.origin !== 'http://cove.invalid') return '/';
    if (url.pathname.startsWith('/login')) return '/';
    return `${url.pathname}${url.search}${url.hash}`;
  } catch {
    return '/';
  }
}
