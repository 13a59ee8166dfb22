/** The one place that turns a region's config into its SandboxDriver. */
import { backendOf, type RegionBackendConfig } from './backend-config.js';
import { createDockerDriver } from './docker/docker-driver-factory.js';
import type { SandboxDriver, SandboxLogger } from './sandbox-driver.js';

/** The driver for the backend the region names (`regions[].backend`; Docker by default). */
export function createDriver(region: RegionBackendConfig, logger: SandboxLogger): SandboxDriver {
  const backend = backendOf(region);
  switch (backend.type) {
    case 'docker':
      return createDockerDriver(backend, logger);
  }
}
