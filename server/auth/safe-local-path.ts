/**
 * Where to send a browser after a sign-in that left the page (OIDC): only a local path, the same
 * rule as the sign-in page's `safeNext` (web/src/lib/safe-next.ts), so `?next=` cannot send
 * anyone to another site, and never back to /login.
 */
export function safeLocalPath(raw: string | null | undefined): string {
  if (!raw || raw.length > 2048) return '/';
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return '/';
  if ([...raw].some((c) => c === '\\' || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return '/';
  try {
    const url = new URL(raw, 'http://cove.invalid');
    if (url.origin !== 'http://cove.invalid' || url.pathname.startsWith('/login')) return '/';
    return `${url.pathname}${url.search}${url.hash}`;
  } catch {
    return '/';
  }
}
