/**
 * The one place that decides what an environment container may do. Pure: same spec in, same
 * options out, so its unit test (exact equality on the whole object) doubles as the security
 * review. Anything that loosens isolation shows up there as a diff.
 */
import { createHash } from 'node:crypto';

import type Docker from 'dockerode';

import {
  KEEP_ALIVE_CMD,
  SANDBOX_CREDENTIALS_DIR,
  SANDBOX_HOME,
  SANDBOX_HOSTNAME,
  SANDBOX_USER,
  SANDBOX_USER_NAME,
} from '../environment-image.js';
import { containerLabels, containerName } from '../names.js';
import type { EnvironmentLimits, EnvironmentSpec } from '../sandbox-driver.js';
import { SandboxError } from '../sandbox-error.js';
import { regionNetworkName } from './region-network.js';

/** Docker's own default network: what a spec without a network policy gets. */
export const DEFAULT_NETWORK_MODE = 'bridge';

const MIB = 1024 * 1024;

/** /var/tmp only needs to exist and be writable for tools that insist on it. */
export const VAR_TMP_SIZE_BYTES = 16 * MIB;

/**
 * Bumped whenever buildContainerSpec changes what it produces, so existing containers get a new
 * spec hash and are recreated when next started.
 */
export const CONTAINER_SPEC_VERSION = 2;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** One CPU in Docker's NanoCpus. */
const NANO_CPUS_PER_MILLI = 1_000_000;

/** Docker's NanoCpus for a CPU limit in millicores. */
export function nanoCpus(cpuMillis: number): number {
  return cpuMillis * NANO_CPUS_PER_MILLI;
}

/** The Docker network a network policy means: the region's own, none, or Docker's default. */
export function networkModeFor(spec: Pick<EnvironmentSpec, 'region' | 'network'>): string {
  switch (spec.network) {
    case 'region':
      return regionNetworkName(spec.region);
    case 'none':
      return 'none';
    case undefined:
      return DEFAULT_NETWORK_MODE;
  }
}

/**
 * Stable hash (12 hex) of everything in the spec that shapes the container. Taken over Docker's
 * values (NanoCpus, host paths, network name), so a spec that makes the same container keeps its
 * hash however the neutral spec spells it.
 */
export function specHash(spec: EnvironmentSpec): string {
  const relevant = {
    v: CONTAINER_SPEC_VERSION,
    ownerId: spec.ownerId,
    region: spec.region,
    image: spec.image,
    limits: {
      pidsLimit: spec.limits.pidsLimit,
      memoryBytes: spec.limits.memoryBytes,
      nanoCpus: nanoCpus(spec.limits.cpuMillis),
      tmpSizeBytes: spec.limits.tmpSizeBytes,
    },
    homeHostPath: spec.home?.path ?? null,
    credentialsHostDir: spec.credentials?.path ?? null,
    env: sortedEntries(spec.env ?? {}),
    networkMode: networkModeFor(spec),
    // Only when set, so environments without them keep their hash.
    ...(spec.runtime !== undefined && { runtime: spec.runtime }),
    ...(spec.labels !== undefined &&
      Object.keys(spec.labels).length > 0 && { labels: sortedEntries(spec.labels) }),
  };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex').slice(0, 12);
}

export function buildContainerSpec(spec: EnvironmentSpec): Docker.ContainerCreateOptions {
  validateLimits(spec.limits);
  validateLabels(spec.labels ?? {});
  const hash = specHash(spec);

  const mounts: Docker.MountSettings[] = [];
  const tmpfs: Record<string, string> = {
    '/tmp': `rw,nosuid,nodev,size=${sizeOption(spec.limits.tmpSizeBytes)},mode=1777`,
    '/var/tmp': `rw,nosuid,nodev,size=${sizeOption(VAR_TMP_SIZE_BYTES)},mode=1777`,
  };
  if (spec.home !== undefined) {
    mounts.push({ Type: 'bind', Source: spec.home.path, Target: SANDBOX_HOME, ReadOnly: false });
  } else {
    // No persistent home (development, tests): the image's home sits on the read-only root, so
    // give the user a throwaway one rather than a shell that cannot write anywhere.
    tmpfs[SANDBOX_HOME] =
      `rw,nosuid,nodev,size=${sizeOption(spec.limits.tmpSizeBytes)},uid=1000,gid=1000,mode=0700`;
  }
  if (spec.credentials !== undefined) {
    // The directory, not the socket file: a file bind goes stale when the server recreates it.
    mounts.push({
      Type: 'bind',
      Source: spec.credentials.path,
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
    Labels: { ...spec.labels, ...containerLabels(spec, hash) },
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
      NanoCpus: nanoCpus(spec.limits.cpuMillis),
      Tmpfs: tmpfs,
      Mounts: mounts,
      // Nothing else from the host: no Binds, no volumes, no devices, no Docker socket.
      Binds: [],
      Devices: [],
      IpcMode: 'private',
      NetworkMode: networkModeFor(spec),
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
    ['cpuMillis', 10],
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

/** Cove's own labels (`cove.*`) say what a container is; nobody else may set them. */
function validateLabels(labels: Readonly<Record<string, string>>): void {
  for (const name of Object.keys(labels)) {
    if (name.startsWith('cove.') || name.length === 0) {
      throw new SandboxError(
        'COVE_ERR_SANDBOX_BAD_SPEC',
        `label ${JSON.stringify(name)} is reserved or empty`,
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
