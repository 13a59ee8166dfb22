/**
 * The default DriverFactory: the backend each region names in config (`regions[].backend`,
 * Docker on the local socket by default), made by the sandbox package, logging through pino.
 */
import type { FastifyBaseLogger } from 'fastify';
import { createDriver, type SandboxLogger } from '../../sandbox/index.js';
import type { DriverFactory } from './environment-service.js';

const sandboxLogger = (log: FastifyBaseLogger): SandboxLogger => ({
  info: (message, fields) => log.info(fields ?? {}, message),
  warn: (message, fields) => log.warn(fields ?? {}, message),
  error: (message, fields) => log.error(fields ?? {}, message),
});

export const defaultDriverFactory: DriverFactory = (region, log) =>
  createDriver(region, sandboxLogger(log.child({ region: region.id })));
