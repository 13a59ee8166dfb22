/**
 * Builds the Fastify application from config and dependencies. Tests use this directly; main.ts
 * only reads config, listens and shuts down. Order: external plugins, then services, then routes.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from './config.js';
import type { Store } from './store/store.js';
import { loggerOptions } from './logger.js';
import securityHeaders from './plugins/security-headers.js';
import errorHandler from './plugins/error-handler.js';
import csrf from './plugins/csrf.js';
import authPlugin from './auth/auth-plugin.js';
import authRoutes from './auth/auth-routes.js';
import directoryService from './directory/directory-service.js';
import directoryRoutes from './directory/directory-routes.js';
import webPages from './web-pages.js';
import { maxInboundFrameBytes } from './protocol/terminal-wire.js';

export interface AppDependencies {
  readonly config: Config;
  readonly store: Store;
  /** Log destination; default stdout. */
  readonly logStream?: NodeJS.WritableStream;
  /** Clock, replaceable in tests. */
  readonly now?: () => number;
  /** Where the built pages are; default dist/web. */
  readonly webRoot?: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    store: Store;
    now: () => number;
  }
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { config, store } = deps;
  const now = deps.now ?? Date.now;
  const https = config.publicUrl.startsWith('https:');
  const app = Fastify({
    logger: loggerOptions(config.logLevel, deps.logStream),
    trustProxy: config.trustProxy,
    bodyLimit: 1024 * 1024,
    disableRequestLogging: false,
    requestIdHeader: false,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('config', config);
  app.decorate('store', store);
  app.decorate('now', now);

  await app.register(errorHandler);
  await app.register(securityHeaders, { https });
  await app.register(cookie);
  await app.register(websocket, { options: { maxPayload: maxInboundFrameBytes, perMessageDeflate: false } });
  await app.register(csrf, { publicOrigin: config.publicUrl });
  await app.register(authPlugin, {
    store,
    https,
    sessionTtlS: config.auth.sessionTtlS,
    mfaPendingTtlS: config.auth.mfaPendingTtlS,
    now,
  });
  await app.register(directoryService);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const checks = { store: await store.ping() };
    const ready = Object.values(checks).every(Boolean);
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'degraded', checks });
  });

  await app.register(authRoutes);
  await app.register(directoryRoutes);
  await app.register(webPages, deps.webRoot ? { root: deps.webRoot } : {});
  return app;
}
