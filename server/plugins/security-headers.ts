/** Security headers on every response: strict CSP, no framing, no referrer, HSTS over HTTPS. */
import fp from 'fastify-plugin';

export default fp(
  async (app, opts: { https: boolean }) => {
    const csp = [
      "default-src 'self'",
      "script-src 'self'",
      // xterm.js sets inline styles on its elements.
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data:",
      "font-src 'self' data:",
      "connect-src 'self'",
      "object-src 'none'",
      "base-uri 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join('; ');
    app.addHook('onSend', async (_request, reply) => {
      reply.header('content-security-policy', csp);
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
