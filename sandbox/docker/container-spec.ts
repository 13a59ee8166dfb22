/**
 * The one place that decides what an environment container may do. Pure: same spec in, same
 * options out, so its unit test (exact equality on the whole object) doubles as the security
 * review. Anything that loosens isolation shows up there as a diff.
 */
import { createHash } from 'node:crypto';

import type Docker from 'dockerode';

import { containerLabels, containerName } from '../names.js';
import type { EnvironmentLimits, EnvironmentSpec } from '../sandbox-driver.js';
import { SandboxError } from '../sandbox-error.js';

export const SANDBOX_USER = '1000:1000';
export const SANDBOX_USER_NAME = 'cloudshell-user';
export const SANDBOX_HOME = '/home/cloudshell-user';
export const SANDBOX_CREDENTIALS_DIR = '/run/cove';
export const SANDBOX_HOSTNAME = 'cove';
/**
 * PID 1 is Docker's init (tini) reaping zombies; this runs under it, keeps the credentials
 * forwarder alive (docker/sandbox/rootfs/usr/local/bin/cove-init) and lives until the stop.
 */
export const KEEP_ALIVE_CMD: readonly string[] = ['/usr/local/bin/cove-init'];
export const DEFAULT_NETWORK_MODE = 'bridge';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

export const DEFAULT_LIMITS: EnvironmentLimits = Object.freeze({
  pidsLimit: 512,
  memoryBytes: 2 * GIB,
  nanoCpus: 1_000_000_000,
  tmpSizeBytes: 256 * MIB,
});

/** /var/tmp only needs to exist and be writable for tools that insist on it. */
export const VAR_TMP_SIZE_BYTES = 16 * MIB;

/**
 * Bumped whenever buildContainerSpec changes what it produces, so existing containers get a new
 * spec hash and are recreated when next started.
 */
export const CONTAINER_SPEC_VERSION = 2;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Stable hash (12 hex) of everything in the spec that shapes the container. */
export function specHash(spec: EnvironmentSpec): string {
  const relevant = {
    v: CONTAINER_SPEC_VERSION,
    ownerId: spec.ownerId,
    region: spec.region,
    image: spec.image,
    limits: {
      pidsLimit: spec.limits.pidsLimit,
      memoryBytes: spec.limits.memoryBytes,
      nanoCpus: spec.limits.nanoCpus,
      tmpSizeBytes: spec.limits.tmpSizeBytes,
    },
    homeHostPath: spec.homeHostPath ?? null,
    credentialsHostDir: spec.credentialsHostDir ?? null,
    env: sortedEntries(spec.env ?? {}),
    networkMode: spec.networkMode ?? DEFAULT_NETWORK_MODE,
    // Only when set, so environments without one keep their hash.
    ...(spec.runtime !== undefined && { runtime: spec.runtime }),
  };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex').slice(0, 12);
}

export function buildContainerSpec(spec: EnvironmentSpec): Docker.ContainerCreateOptions {
  validateLimits(spec.limits);
  const hash = specHash(spec);

  const mounts: Docker.MountSettings[] = [];
  const tmpfs: Record<string, string> = {
    '/tmp': `rw,nosuid,nodev,size=${sizeOption(spec.limits.tmpSizeBytes)},mode=1777`,
    '/var/tmp': `rw,nosuid,nodev,size=${sizeOption(VAR_TMP_SIZE_BYTES)},mode=1777`,
  };
  if (spec.homeHostPath !== undefined) {
    mounts.push({ Type: 'bind', Source: spec.homeHostPath, Target: SANDBOX_HOME, ReadOnly: false });
  } else {
    // No persistent home (development, tests): the image's home sits on the read-only root, so
    // give the user a throwaway one rather than a shell that cannot write anywhere.
    tmpfs[SANDBOX_HOME] =
      `rw,nosuid,nodev,size=${sizeOption(spec.limits.tmpSizeBytes)},uid=1000,gid=1000,mode=0700`;
  }
  if (spec.credentialsHostDir !== undefined) {
    // The directory, not the socket file: a file bind goes stale when the server recreates it.
    mounts.push({
      Type: 'bind',
      Source: spec.credentialsHostDir,
      Target: SANDBOX_CREDENTIALS_DIR,
      ReadOnly: true,
    });
  }

  return {
    name: containerName(spec),
    Image: spec.image,
    Hostname: SANDBOX_HOSTNAME,
    User: SANDBOX_USER,
    WorkingDir: SANDBOX_HOME,
    Env: buildEnv(spec.env ?? {}),
    Cmd: [...KEEP_ALIVE_CMD],
    Labels: containerLabels(spec, hash),
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    OpenStdin: false,
    Tty: false,
    StopTimeout: 5,
    HostConfig: {
      Init: true,
      Privileged: false,
      CapDrop: ['ALL'],
      CapAdd: [],
      SecurityOpt: ['no-new-privileges:true'],
      ReadonlyRootfs: true,
      PidsLimit: spec.limits.pidsLimit,
      Memory: spec.limits.memoryBytes,
      // Equal to Memory: no swap, so the limit is the limit.
      MemorySwap: spec.limits.memoryBytes,
      NanoCpus: spec.limits.nanoCpus,
      Tmpfs: tmpfs,
      Mounts: mounts,
      // Nothing else from the host: no Binds, no volumes, no devices, no Docker socket.
      Binds: [],
      Devices: [],
      IpcMode: 'private',
      NetworkMode: spec.networkMode ?? DEFAULT_NETWORK_MODE,
      // gVisor (runsc) or another OCI runtime the engine knows; the engine's default otherwise.
      ...(spec.runtime !== undefined && { Runtime: spec.runtime }),
      RestartPolicy: { Name: 'no' },
      AutoRemove: false,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    },
  };
}

/** HOME and USER are ours; LANG has a default the spec may override. Sorted for stable output. */
function buildEnv(extra: Readonly<Record<string, string>>): string[] {
  for (const name of Object.keys(extra)) {
    if (!ENV_NAME.test(name)) {
      throw new SandboxError('COVE_ERR_SANDBOX_BAD_SPEC', `invalid environment variable name: ${name}`);
    }
  }
  const merged: Record<string, string> = {
    LANG: 'C.UTF-8',
    ...extra,
    HOME: SANDBOX_HOME,
    USER: SANDBOX_USER_NAME,
  };
  return sortedEntries(merged).map(([name, value]) => `${name}=${value}`);
}

function validateLimits(limits: EnvironmentLimits): void {
  const checks: [keyof EnvironmentLimits, number][] = [
    ['pidsLimit', 16],
    ['memoryBytes', 64 * MIB],
    ['nanoCpus', 10_000_000],
    ['tmpSizeBytes', MIB],
  ];
  for (const [field, minimum] of checks) {
    const value = limits[field];
    // A zero or negative limit means "unlimited" to Docker: never let that through by accident.
    if (!Number.isSafeInteger(value) || value < minimum) {
      throw new SandboxError(
        'COVE_ERR_SANDBOX_BAD_SPEC',
        `limit ${field} must be an integer >= ${minimum}, got ${value}`,
      );
    }
  }
}

/** tmpfs sizes in the unit a human reads in `docker inspect`. */
function sizeOption(bytes: number): string {
  if (bytes % MIB === 0) return `${bytes / MIB}m`;
  if (bytes % 1024 === 0) return `${bytes / 1024}k`;
  return String(bytes);
}

function sortedEntries(record: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
