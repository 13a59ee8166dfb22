/**
 * The default DriverFactory: a DockerSandboxDriver per region, over the region's Docker endpoint
 * (the local socket unless config names a remote engine, with TLS when certificates are given).
 */
import { readFileSync } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import type { RegionConfig } from '../config.js';
import {
  DEFAULT_DOCKER_SOCKET,
  DockerSandboxDriver,
  type DockerConnectionOptions,
  type SandboxLogger,
} from '../../sandbox/index.js';
import type { DriverFactory } from './environment-service.js';

function connectionFor(region: RegionConfig): DockerConnectionOptions {
  const docker = region.docker;
  if (!docker?.host) return { socketPath: docker?.socketPath ?? DEFAULT_DOCKER_SOCKET };
  const tls = docker.caPath !== undefined || docker.certPath !== undefined || docker.keyPath !== undefined;
  return {
    host: docker.host,
    ...(docker.port ? { port: docker.port } : {}),
    protocol: tls ? 'https' : 'http',
    ...(docker.caPath ? { ca: readFileSync(docker.caPath) } : {}),
    ...(docker.certPath ? { cert: readFileSync(docker.certPath) } : {}),
    ...(docker.keyPath ? { key: readFileSync(docker.keyPath) } : {}),
  };
}

const sandboxLogger = (log: FastifyBaseLogger): SandboxLogger => ({
  info: (message, fields) => log.info(fields ?? {}, message),
  warn: (message, fields) => log.warn(fields ?? {}, message),
  error: (message, fields) => log.error(fields ?? {}, message),
});

export const dockerDriverFactory: DriverFactory = (region, log) =>
  new DockerSandboxDriver({
    connection: connectionFor(region),
    logger: sandboxLogger(log.child({ region: region.id })),
    // A remote engine's home paths live on its host, not ours.
    verifyHostPaths: !region.docker?.host,
  });
