/**
 * CSRF defence for the JSON API: a state-changing request must carry an Origin (or, when absent,
 * a Referer) that matches Cove's public origin exactly, and a JSON body type. SameSite cookies
 * are the second layer. API scripts that send the Origin header need no token.
 */
import fp from 'fastify-plugin';
import { errors } from '../errors.js';

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** True when the request's Origin/Referer is exactly Cove's public origin. */
export function isSameOrigin(
  headers: Record<string, string | string[] | undefined>,
  publicOrigin: string,
): boolean {
  const origin = headers.origin;
  if (typeof origin === 'string') return origin === publicOrigin;
  if (origin !== undefined) return false;
  const referer = headers.referer;
  if (typeof referer !== 'string') return false;
  try {
    return new URL(referer).origin === publicOrigin;
  } catch {
    return false;
  }
}

export default fp(
  async (app, opts: { publicOrigin: string }) => {
    app.addHook('onRequest', async (request) => {
      if (safeMethods.has(request.method)) return;
      // The AWS CLI's SSO APIs (server/sso) ignore cookies: a client secret or bearer token is the
      // only credential, which a cross-site page cannot send. Matched on the route, not the raw URL.
      if (request.routeOptions.url?.startsWith('/aws/')) return;
      // SCIM is a machine API: its bearer token, which no browser sends by itself, is its only
      // credential (cookies are not read there), so the origin rule has nothing to protect.
      if (request.url.startsWith('/scim/v2/')) return;
      if (!isSameOrigin(request.headers, opts.publicOrigin)) throw errors.csrf();
      const length = Number(request.headers['content-length'] ?? 0);
      const hasBody = length > 0 || request.headers['transfer-encoding'] !== undefined;
      const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      // Bodies must be JSON (or CSV for bulk import): forms and text/plain are what cross-site forms send.
      if (hasBody && type !== 'application/json' && type !== 'text/csv') throw errors.unsupportedMediaType();
    });
  },
  { name: 'csrf' },
);
