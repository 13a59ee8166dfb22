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
import oidcService from './auth/oidc-service.js';
import oidcRoutes from './auth/oidc-routes.js';
import oidcAdminRoutes from './auth/oidc-admin-routes.js';
import type { OidcClientOptions } from './auth/oidc-client.js';
import directoryService from './directory/directory-service.js';
import directoryRoutes from './directory/directory-routes.js';
import scimService from './scim/scim-service.js';
import scimRoutes from './scim/scim-routes.js';
import scimAdminRoutes from './scim/scim-admin-routes.js';
import webPages from './web-pages.js';
import { CloseCode, maxInboundFrameBytes } from './protocol/terminal-wire.js';
import type { ReadyzResponse } from './protocol/api.js';
import environmentService, {
  type DriverFactory,
  type HomesProvider,
} from './environments/environment-service.js';
import { defaultDriverFactory } from './environments/driver-factory.js';
import { sandboxGuardFor, type SandboxGuard } from './environments/sandbox-guard.js';
import terminalService from './terminals/terminal-service.js';
import recordingService from './recordings/recording-service.js';
import recordingRoutes from './recordings/recording-routes.js';
import terminalRoutes from './terminals/terminal-routes.js';
import homeService, { type HomeVolumes } from './homes/home-service.js';
import homeLifecycle from './homes/home-lifecycle.js';
import homeRoutes from './homes/home-routes.js';
import linkRoutes from './links/link-routes.js';
import usageMeter from './usage/usage-meter.js';
import credentialService from './credentials/credential-service.js';
import credentialRoutes from './credentials/credential-routes.js';
import type { CredentialBroker } from './credentials/credential-broker.js';
import credentialDelivery from './credentials/credential-delivery.js';
import ssoSignInService from './sso/sso-sign-in-service.js';
import ssoPortalService from './sso/sso-portal-service.js';
import ssoRoutes from './sso/sso-routes.js';
import fileService from './files/file-service.js';
import fileRoutes from './files/file-routes.js';
import prestartService from './environments/prestart-service.js';
import prestartRoutes from './environments/prestart-routes.js';
import { Metrics } from './metrics/metrics.js';
import metricsPlugin from './metrics/metrics-plugin.js';
import { timedStore } from './metrics/timed-store.js';

export interface AppDependencies {
  readonly config: Config;
  readonly store: Store;
  /** Log destination; default stdout. */
  readonly logStream?: NodeJS.WritableStream;
  /** Clock, replaceable in tests. */
  readonly now?: () => number;
  /** Where the built pages are; default dist/web. */
  readonly webRoot?: string;
  /** Makes each region's sandbox driver; default Docker. Tests pass a fake. */
  readonly driverFactory?: DriverFactory;
  /** Home volumes; environments run without a persistent home when absent. */
  readonly homes?: HomesProvider;
  /**
   * Loop-mounted homes (main.ts passes `loopHomeVolumesFor(config)`); without them every
   * environment gets a throwaway home. Tests pass their own root so they can clean it up.
   */
  readonly homeVolumes?: HomeVolumes;
  /**
   * Egress firewall and engine version gate checked before environments start; by default built
   * from config when the Docker backend is used, none with a test's fake backend; null: none.
   */
  readonly sandboxGuard?: SandboxGuard | null;
  /** Issues users' AWS credentials; default an StsCredentialBroker from `config.sts`. */
  readonly credentialBroker?: CredentialBroker;
  /** OpenID provider client tuning (timeouts, JWKS cooldown); tests shorten them. */
  readonly oidcClient?: Partial<OidcClientOptions>;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    store: Store;
    now: () => number;
  }
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { config } = deps;
  // Per app, not global: tests build many apps in one process.
  const metrics = new Metrics({ instance: config.instanceId, processMetrics: config.metrics.token !== '' });
  const store = timedStore(deps.store, metrics);
  const now = deps.now ?? Date.now;
  const https = config.publicUrl.startsWith('https:');
  const app = Fastify({
    logger: loggerOptions(config.logLevel, deps.logStream, config.instanceId),
    // Only the listed proxies' X-Forwarded-* count; with none, the client is the TCP peer.
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    bodyLimit: 1024 * 1024,
    requestIdHeader: false,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('config', config);
  app.decorate('store', store);
  app.decorate('now', now);

  await app.register(errorHandler);
  await app.register(metricsPlugin, { metrics, token: config.metrics.token });
  await app.register(securityHeaders, { https });
  await app.register(cookie);
  await app.register(websocket, {
    options: { maxPayload: maxInboundFrameBytes, perMessageDeflate: false },
    // The default closes sockets without a code; pages must see 1001 to know to reconnect.
    preClose(done) {
      for (const client of app.websocketServer.clients)
        client.close(CloseCode.goingAway, 'Cove is restarting.');
      app.websocketServer.close();
      done();
    },
  });
  await app.register(csrf, { publicOrigin: config.publicUrl });
  await app.register(authPlugin, {
    store,
    https,
    sessionTtlS: config.auth.sessionTtlS,
    mfaPendingTtlS: config.auth.mfaPendingTtlS,
    now,
  });
  await app.register(directoryService);
  await app.register(scimService);
  await app.register(oidcService, deps.oidcClient ? { clientOptions: deps.oidcClient } : {});
  await app.register(credentialService, deps.credentialBroker ? { broker: deps.credentialBroker } : {});
  await app.register(ssoSignInService);
  await app.register(ssoPortalService);

  // Homes before environments: every existing home is mounted before any container is adopted.
  await app.register(homeService, deps.homeVolumes ? { volumes: deps.homeVolumes } : {});
  const homes = deps.homes ?? (app.homes.enabled ? app.homes : undefined);
  const guard =
    deps.sandboxGuard === undefined
      ? deps.driverFactory
        ? undefined
        : sandboxGuardFor(config, app.log.child({ component: 'sandbox-guard' }))
      : (deps.sandboxGuard ?? undefined);
  await app.register(environmentService, {
    driverFactory: deps.driverFactory ?? defaultDriverFactory,
    ...(homes ? { homes } : {}),
    ...(guard ? { guard } : {}),
  });
  await app.register(recordingService);
  await app.register(terminalService, {
    // Late-bound: delivery needs the terminals, and each shell's variables need delivery.
    shellEnv: async (owner, region, binding, terminalId) =>
      app.hasDecorator('credentialDelivery')
        ? app.credentialDelivery.shellEnv(owner, region, binding, terminalId)
        : {},
  });
  // After the terminals (its tokens name them) and the broker (app.credentials).
  await app.register(credentialDelivery);
  await app.register(homeLifecycle);
  await app.register(usageMeter);
  await app.register(fileService);
  await app.register(prestartService);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const [storeOk, dockerOk, networkOk] = await Promise.all([
      store.ping(),
      app.environments.ping(),
      guard ? guard.networkReady() : true,
    ]);
    // capacity: false while an engine has just refused containers for a full disk (F08).
    const checks = {
      store: storeOk,
      docker: dockerOk,
      network: networkOk,
      capacity: app.environments.hasCapacity(),
    };
    const ready = Object.values(checks).every(Boolean);
    // Reported, not a check: taking this instance out of a load balancer would not bring STS
    // back, and shells without AWS credentials still work.
    const body: ReadyzResponse = {
      status: ready ? 'ready' : 'degraded',
      instance: config.instanceId,
      checks,
      sts: app.credentials.stsHealth(),
    };
    return reply.status(ready ? 200 : 503).send(body);
  });

  await app.register(authRoutes);
  await app.register(oidcRoutes);
  await app.register(oidcAdminRoutes);
  await app.register(directoryRoutes);
  await app.register(scimAdminRoutes);
  await app.register(scimRoutes);
  await app.register(terminalRoutes);
  await app.register(recordingRoutes);
  await app.register(homeRoutes);
  await app.register(linkRoutes);
  await app.register(credentialRoutes);
  await app.register(ssoRoutes);
  await app.register(fileRoutes);
  await app.register(prestartRoutes);
  await app.register(webPages, deps.webRoot ? { root: deps.webRoot } : {});
  return app;
}
