/**
 * First-start work: the first admin (auth) and the default permission sets (directory).
 * Idempotent: runs at every start and does nothing when the data is already there.
 */
import type { FastifyInstance } from 'fastify';
import type { ProcessSettings } from './config.js';
import { ensureFirstAdmin, type FirstStart } from './auth/first-admin.js';
import { seedDirectory } from './directory/seed.js';

export async function bootstrap(
  app: FastifyInstance,
  settings: Pick<ProcessSettings, 'adminPassword'>,
): Promise<FirstStart> {
  await seedDirectory(app);
  return ensureFirstAdmin(app, settings.adminPassword);
}
