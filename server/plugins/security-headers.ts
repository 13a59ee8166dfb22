/** Security headers on every response: strict CSP, no framing, no referrer, HSTS over HTTPS. */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

/**
 * Where the shell page's presigned PUTs go (file transfer): the browser talks to the staging S3
 * directly, so CSP `connect-src` must name it, and nothing broader than each bucket's own host.
 */
function stagingOrigins(app: FastifyInstance): string[] {
  const origins = new Set<string>();
  for (const region of app.config.regions) {
    const s3 = region.s3;
    if (!s3) continue;
    if (s3.endpoint) {
      const url = new URL(s3.endpoint);
      origins.add(url.origin);
      if (!s3.forcePathStyle) origins.add(`${url.protocol}//${s3.bucket}.${url.host}`);
    } else {
      const bucketRegion = s3.region ?? region.id;
      origins.add(`https://${s3.bucket}.s3.${bucketRegion}.amazonaws.com`);
      origins.add(`https://s3.${bucketRegion}.amazonaws.com`);
    }
  }
  const embedded = app.hasDecorator('files') ? app.files.embedded?.endpoint : undefined;
  if (embedded) origins.add(new URL(embedded).origin);
  return [...origins];
}

export default fp(
  async (app, opts: { https: boolean }) => {
    const policy = (connect: readonly string[], wasm = false) =>
      [
        "default-src 'self'",
        // The admin console's recording player runs a terminal emulator compiled to WebAssembly;
        // 'wasm-unsafe-eval' lets it compile that, and still no JavaScript eval, on that page only.
        wasm ? "script-src 'self' 'wasm-unsafe-eval'" : "script-src 'self'",
        // xterm.js sets inline styles on its elements.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        ["connect-src 'self'", ...connect].join(' '),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
      ].join('; ');
    let csp = policy([]);
    let adminCsp = policy([], true);
    // The embedded S3's port is known only once the files service has started.
    app.addHook('onReady', async () => {
      csp = policy(stagingOrigins(app));
      adminCsp = policy(stagingOrigins(app), true);
    });
    app.addHook('onSend', async (request, reply) => {
      const path = request.url.split('?')[0];
      reply.header('content-security-policy', path === '/admin' || path === '/admin/' ? adminCsp : csp);
      reply.header('referrer-policy', 'no-referrer');
      reply.header('x-content-type-options', 'nosniff');
      reply.header('x-frame-options', 'DENY');
      reply.header('cross-origin-opener-policy', 'same-origin');
      reply.header('cross-origin-resource-policy', 'same-origin');
      reply.header('permissions-policy', 'camera=(), microphone=(), geolocation=()');
      if (opts.https) reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
    });
  },
  { name: 'security-headers' },
);
