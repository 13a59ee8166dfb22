/**
 * What every backend assumes about the environment image (docker/sandbox/): its user, its home,
 * where the credentials socket appears, its init. A Docker container and a Kubernetes pod of the
 * same image look the same from inside.
 */
import type { EnvironmentLimits } from './sandbox-driver.js';

/** `uid:gid` of the environment user; shells and execs run as it unless told otherwise. */
export const SANDBOX_USER = '1000:1000';
export const SANDBOX_USER_NAME = 'cloudshell-user';
export const SANDBOX_HOME = '/home/cloudshell-user';
/** Where `EnvironmentSpec.credentials` appears inside the environment (read-only). */
export const SANDBOX_CREDENTIALS_DIR = '/run/cove';
export const SANDBOX_HOSTNAME = 'cove';
/**
 * Runs under the backend's init (tini) reaping zombies, keeps the credentials forwarder alive
 * (docker/sandbox/rootfs/usr/local/bin/cove-init) and lives until the stop.
 */
export const KEEP_ALIVE_CMD: readonly string[] = ['/usr/local/bin/cove-init'];

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

export const DEFAULT_LIMITS: EnvironmentLimits = Object.freeze({
  pidsLimit: 512,
  memoryBytes: 2 * GIB,
  cpuMillis: 1000,
  tmpSizeBytes: 256 * MIB,
});
