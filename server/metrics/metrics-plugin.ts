/**
 * The metrics service (`app.metrics`), the request counter and `GET /metrics`. The endpoint is
 * off unless `metrics.token` is set (404 `COVE_ERR_METRICS_DISABLED`); then it needs
 * `Authorization: Bearer <token>`, compared in constant time (401 `COVE_ERR_METRICS_UNAUTHORIZED`).
 * Why a token and not an open port: the numbers describe who works when and how much, and Cove
 * is often reachable from the internet through the same listener as its pages.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import { CoveError } from '../errors.js';
import type { Metrics } from './metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

export const metricsErrors = {
  disabled: () =>
    new CoveError(
      'COVE_ERR_METRICS_DISABLED',
      404,
      'Metrics are off on this Cove server. To turn them on, set metrics.token (COVE_METRICS_TOKEN) to a secret of at least 32 characters.',
    ),
  unauthorized: () =>
    new CoveError(
      'COVE_ERR_METRICS_UNAUTHORIZED',
      401,
      'Metrics need the header "Authorization: Bearer <token>" with the token configured in metrics.token (COVE_METRICS_TOKEN); it was missing or wrong.',
      { headers: { 'www-authenticate': 'Bearer realm="cove-metrics"' } },
    ),
} as const;

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/** True when `header` is `Bearer <token>`; the digests make the comparison length-independent. */
export function bearerMatches(header: string | undefined, expectedDigest: Buffer): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
  const given = sha256(match?.[1] ?? '');
  return timingSafeEqual(given, expectedDigest) && match !== null;
}

const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface MetricsPluginOptions {
  readonly metrics: Metrics;
  /** Empty: /metrics is off. */
  readonly token: string;
}

export default fp(
  async (app, opts: MetricsPluginOptions) => {
    const { metrics } = opts;
    app.decorate('metrics', metrics);

    // Route patterns (`/api/users/:id`), never raw URLs: those would put ids and names in labels.
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? '(unmatched)';
      const method = knownMethods.has(request.method) ? request.method : 'OTHER';
      metrics.httpRequest(method, route, reply.statusCode);
    });

    const expected = opts.token ? sha256(opts.token) : undefined;
    app.get('/metrics', async (request, reply) => {
      if (!expected) throw metricsErrors.disabled();
      if (!bearerMatches(request.headers.authorization, expected)) throw metricsErrors.unauthorized();
      const text = await metrics.exposition();
      return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
    });
  },
  { name: 'metrics' },
);
