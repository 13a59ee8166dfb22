/** Public API of the sandbox library: what the server may import. */
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
  buildContainerSpec,
  CONTAINER_SPEC_VERSION,
  DEFAULT_NETWORK_MODE,
  specHash,
  VAR_TMP_SIZE_BYTES,
} from './docker/container-spec.js';
export {
  containerLabels,
  containerName,
  keyFromLabels,
  LABEL_MANAGED,
  LABEL_OWNER,
  LABEL_REGION,
  LABEL_SPEC_HASH,
  MANAGED_LABEL_FILTER,
  safeSlug,
} from './names.js';
export {
  DEFAULT_DOCKER_SOCKET,
  DockerSandboxDriver,
  type DockerConnectionOptions,
  type DockerSandboxDriverOptions,
} from './docker/docker-sandbox-driver.js';
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
export {
  BLOCKED_IPV4,
  desiredEgressRules,
  EGRESS_CHAIN,
  HOST_CHAIN,
  IptablesEgressPolicy,
  resolversFrom,
  type EgressPolicy,
  type EgressPolicyInput,
  type EgressPolicyMode,
} from './docker/egress-policy.js';
export {
  BRIDGE_PREFIX,
  regionBridgeName,
  regionNetworkName,
  regionNetworkOptions,
} from './docker/region-network.js';
export {
  ENGINE_ADVISORIES,
  engineVersionsFrom,
  evaluateEngineVersions,
  type EngineFinding,
  type EngineVersions,
} from './docker/engine-version.js';
