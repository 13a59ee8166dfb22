/**
 * The sandbox package's public surface: all the server may import (an ESLint rule holds it to this
 * file). The backend contract and its errors, the factory that picks a region's backend from
 * config, the home store, and the host firewall, each behind neutral names; backends' own files
 * (sandbox/docker/, ...) stay private to the package.
 */
export type * from './sandbox-driver.js';
export { SandboxError, type SandboxErrorCode } from './sandbox-error.js';
export { hostDirectory } from './host-directory.js';
export {
  DEFAULT_LIMITS,
  KEEP_ALIVE_CMD,
  SANDBOX_CREDENTIALS_DIR,
  SANDBOX_HOME,
  SANDBOX_HOSTNAME,
  SANDBOX_USER,
  SANDBOX_USER_NAME,
} from './environment-image.js';
export {
  backendOf,
  runsOnThisHost,
  type BackendConfig,
  type DockerBackendConfig,
  type RegionBackendConfig,
} from './backend-config.js';
export { createDriver } from './create-driver.js';
export {
  formatBytes,
  homeSlug,
  HomeVolumeError,
  LoopHomeVolumes,
  mountedPaths,
  type HomeErrorReason,
  type HomeInfo,
  type HomeUsage,
  type HomeVolumeOptions,
} from './homes/home-volumes.js';
export type { EgressPolicy, EgressPolicyMode } from './docker/egress-policy.js';
export { hostEgressPolicy, type EgressRegionConfig } from './docker/host-egress.js';
