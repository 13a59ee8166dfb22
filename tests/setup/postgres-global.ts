/**
 * Global set-up of the `integration-pg` project: one throwaway PostgreSQL for the whole project
 * (tests/helpers/postgres.ts), its URL handed to the tests, stopped and removed afterwards.
 */
import type { TestProject } from 'vitest/node';
import { startPostgres } from '../helpers/postgres.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const postgres = await startPostgres();
  project.provide('postgresSocketDir', postgres.socketDir);
  return () => postgres.dispose();
}
