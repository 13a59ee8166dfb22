/**
 * A DockerSandboxDriver for a region's Docker backend: the local socket unless config names a
 * remote engine, with TLS when certificate files are given.
 */
import { readFileSync } from 'node:fs';

import type { DockerBackendConfig } from '../backend-config.js';
import type { SandboxLogger } from '../sandbox-driver.js';
import {
  DEFAULT_DOCKER_SOCKET,
  DockerSandboxDriver,
  type DockerConnectionOptions,
} from './docker-sandbox-driver.js';

export function dockerConnectionFor(backend: DockerBackendConfig): DockerConnectionOptions {
  if (!backend.host) return { socketPath: backend.socketPath ?? DEFAULT_DOCKER_SOCKET };
  const tls = backend.caPath !== undefined || backend.certPath !== undefined || backend.keyPath !== undefined;
  return {
    host: backend.host,
    ...(backend.port ? { port: backend.port } : {}),
    protocol: tls ? 'https' : 'http',
    ...(backend.caPath ? { ca: readFileSync(backend.caPath) } : {}),
    ...(backend.certPath ? { cert: readFileSync(backend.certPath) } : {}),
    ...(backend.keyPath ? { key: readFileSync(backend.keyPath) } : {}),
  };
}

export function createDockerDriver(backend: DockerBackendConfig, logger: SandboxLogger): DockerSandboxDriver {
  return new DockerSandboxDriver({
    connection: dockerConnectionFor(backend),
    logger,
    // A remote engine's home paths live on its host, not ours.
    verifyHostPaths: !backend.host,
  });
}
