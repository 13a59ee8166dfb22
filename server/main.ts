/**
 * The process: read config, open the store, build the app, listen, and close gracefully on
 * SIGTERM/SIGINT. Everything else lives in app.ts.
 */
import { ConfigError, loadConfig } from './config.js';
import { openStore } from './store/open-store.js';
import { buildApp } from './app.js';
import { bootstrap } from './bootstrap.js';
import { loopHomeVolumesFor } from './homes/home-service.js';

async function main(): Promise<void> {
  const started = performance.now();
  const { config, settings } = loadConfig();
  const { store, description: database } = await openStore(config);
  const homeVolumes = loopHomeVolumesFor(config);
  const app = await buildApp({ config, store, ...(homeVolumes ? { homeVolumes } : {}) });
  const firstStart = await bootstrap(app, settings);
  await app.listen({ host: config.host, port: config.port });
  app.log.info(
    { publicUrl: config.publicUrl, database, startMs: Math.round(performance.now() - started) },
    'Cove is listening',
  );
  console.log(`\nCove is running at ${config.publicUrl}`);
  if (firstStart.oneTimeAdminPassword) {
    console.log(
      `\nFirst start: created user "admin" with this one-time password (shown only now; you must change it at first sign-in):\n\n    ${firstStart.oneTimeAdminPassword}\n`,
    );
  } else if (firstStart.adminCreated) {
    console.log('\nFirst start: created user "admin" with the password from COVE_ADMIN_PASSWORD.\n');
  }

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    app
      .close()
      .then(() => store.close())
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else {
    console.error('Cove could not start:', error instanceof Error ? error.message : error);
  }
  process.exit(1);
});
