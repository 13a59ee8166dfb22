/**
 * Environments as containers: get-or-create-and-start (single flight per name, settling races
 * with other processes through the engine), status, stop, remove and list by labels. Also makes
 * the region's network on first use.
 */
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import type Docker from 'dockerode';

import { containerName, keyFromLabels, LABEL_SPEC_HASH, MANAGED_LABEL_FILTER } from '../names.js';
import type { EnvironmentKey, EnvironmentSpec, EnvironmentStatus, SandboxLogger } from '../sandbox-driver.js';
import { SandboxError } from '../sandbox-error.js';
import { buildContainerSpec, specHash } from './container-spec.js';
import {
  backendError,
  engineCall,
  hostFullError,
  isEngineDiskFull,
  mapCreateError,
  mapStartError,
  statusCode,
} from './docker-errors.js';
import type { DockerEngine, DockerEngineContainer } from './http-docker-engine.js';
import { regionNetworkName, regionNetworkOptions, regionNetworkProblems } from './region-network.js';

export interface DockerLifecycleOptions {
  readonly logger?: SandboxLogger | undefined;
  /** See DockerSandboxDriverOptions.verifyHostPaths. */
  readonly verifyHostPaths: boolean;
  /** Seconds `stop` waits for a clean exit before SIGKILL. */
  readonly stopTimeoutS: number;
}

export class DockerLifecycle {
  readonly #docker: DockerEngine;
  readonly #logger: SandboxLogger | undefined;
  readonly #verifyHostPaths: boolean;
  readonly #stopTimeoutS: number;
  /** Single flight per container name within this process; the engine arbitrates across processes. */
  readonly #ensuring = new Map<string, Promise<EnvironmentStatus>>();

  constructor(docker: DockerEngine, options: DockerLifecycleOptions) {
    this.#docker = docker;
    this.#logger = options.logger;
    this.#verifyHostPaths = options.verifyHostPaths;
    this.#stopTimeoutS = options.stopTimeoutS;
  }

  ensure(spec: EnvironmentSpec): Promise<EnvironmentStatus> {
    const name = containerName(spec);
    const pending = this.#ensuring.get(name);
    if (pending) {
      return pending;
    }
    const attempt = this.#ensure(spec, name).finally(() => this.#ensuring.delete(name));
    this.#ensuring.set(name, attempt);
    return attempt;
  }

  async #ensure(spec: EnvironmentSpec, name: string): Promise<EnvironmentStatus> {
    const options = buildContainerSpec(spec);
    const wantedHash = specHash(spec);
    // Loop until the engine's view settles: another process may be creating, removing or starting
    // the same name. The engine reserves a name before the container can be inspected, so a 409
    // on create can be followed by a 404 on inspect for a moment.
    const deadline = Date.now() + 20_000;
    for (let round = 0; Date.now() < deadline; round++) {
      let info = await this.inspect(name);
      if (info && info.State.Status === 'removing') {
        await sleep(200);
        continue;
      }
      if (info && info.State.Status === 'dead') {
        // A container whose removal failed half-way can never start again.
        await this.#removeByName(name);
        continue;
      }
      if (info && !info.State.Running && info.Config.Labels[LABEL_SPEC_HASH] !== wantedHash) {
        this.#logger?.info('recreating stopped environment with a new spec', { name });
        await this.#removeByName(name);
        info = undefined;
      }
      let createdNow = false;
      if (!info) {
        await this.#verifyPaths(spec);
        await this.#ensureRegionNetwork(spec);
        try {
          await this.#docker.createContainer(options);
          createdNow = true;
          this.#logger?.info('environment created', { name });
        } catch (err) {
          if (statusCode(err) === 409) {
            await sleep(Math.min(25 * (round + 1), 250));
            continue; // someone else created it (or is removing it): look again
          }
          throw mapCreateError(err, spec);
        }
        info = await this.inspect(name);
        if (!info) {
          continue; // removed by someone else right after we made it
        }
      }
      if (!info.State.Running || info.State.Paused) {
        try {
          await this.#start(name, info.State.Paused, spec);
        } catch (err) {
          // A container made just now that cannot start for lack of space would sit in `created`
          // holding a layer; the next ensure makes a fresh one.
          if (createdNow && isEngineDiskFull(err))
            await this.#removeByName(name).catch((removeErr: unknown) =>
              this.#logger?.warn('could not remove a container that failed to start', {
                name,
                error: String(removeErr),
              }),
            );
          throw err;
        }
        info = await this.inspect(name);
        if (!info) {
          continue;
        }
      }
      return statusFromInspect(info, spec);
    }
    throw new SandboxError(
      'COVE_ERR_SANDBOX_BACKEND',
      `could not settle container ${name}: it kept changing under us`,
    );
  }

  async status(key: EnvironmentKey): Promise<EnvironmentStatus> {
    const info = await this.inspect(containerName(key));
    return info
      ? statusFromInspect(info, key)
      : { ownerId: key.ownerId, region: key.region, state: 'missing' };
  }

  async stop(key: EnvironmentKey): Promise<void> {
    try {
      await this.#docker.getContainer(containerName(key)).stop({ t: this.#stopTimeoutS });
    } catch (err) {
      const code = statusCode(err);
      // 304: already stopped; 404: gone. Both mean what the caller wanted.
      if (code !== 304 && code !== 404) {
        throw backendError(err, 'stop');
      }
    }
  }

  async remove(key: EnvironmentKey): Promise<void> {
    await this.#removeByName(containerName(key));
  }

  async list(): Promise<EnvironmentStatus[]> {
    const containers = await engineCall('list', () =>
      this.#docker.listContainers({ all: true, filters: { label: [MANAGED_LABEL_FILTER] } }),
    );
    const statuses = await Promise.all(
      containers.map(async (summary) => {
        const key = keyFromLabels(summary.Labels);
        if (!key) {
          return undefined;
        }
        const info = await this.inspect(summary.Id);
        return info ? statusFromInspect(info, key) : undefined;
      }),
    );
    return statuses.filter((s): s is EnvironmentStatus => s !== undefined);
  }

  /** The container of a running environment; NOT_RUNNING otherwise. */
  async running(key: EnvironmentKey): Promise<DockerEngineContainer> {
    const name = containerName(key);
    const info = await this.inspect(name);
    if (!info || !info.State.Running) {
      throw new SandboxError('COVE_ERR_SANDBOX_NOT_RUNNING', `environment ${name} is not running`);
    }
    return this.#docker.getContainer(info.Id);
  }

  async inspect(nameOrId: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.#docker.getContainer(nameOrId).inspect();
    } catch (err) {
      if (statusCode(err) === 404) {
        return undefined;
      }
      throw backendError(err, 'inspect');
    }
  }

  async #start(name: string, paused: boolean, spec: EnvironmentSpec): Promise<void> {
    const container = this.#docker.getContainer(name);
    try {
      if (paused) {
        await container.unpause();
      } else {
        await container.start();
      }
      this.#logger?.info('environment started', { name });
    } catch (err) {
      if (statusCode(err) === 304) {
        return; // started by someone else meanwhile
      }
      throw mapStartError(err, spec, name);
    }
  }

  async #removeByName(name: string): Promise<void> {
    try {
      await this.#docker.getContainer(name).remove({ force: true });
    } catch (err) {
      const code = statusCode(err);
      // 404: gone already. 409: removal already in progress, which ends the same way.
      if (code !== 404 && code !== 409) {
        throw backendError(err, 'remove');
      }
    }
  }

  async #verifyPaths(spec: EnvironmentSpec): Promise<void> {
    if (!this.#verifyHostPaths) {
      return;
    }
    if (spec.home !== undefined && !(await isDirectory(spec.home.path))) {
      throw new SandboxError(
        'COVE_ERR_SANDBOX_HOME_MISSING',
        `home directory ${spec.home.path} does not exist`,
      );
    }
    if (spec.credentials !== undefined && !(await isDirectory(spec.credentials.path))) {
      throw new SandboxError(
        'COVE_ERR_SANDBOX_CREDENTIALS_MISSING',
        `credentials directory ${spec.credentials.path} does not exist`,
      );
    }
  }

  /**
   * The region's own network (region-network.ts), made on first use. Looked up before every
   * create rather than remembered: a network removed meanwhile would otherwise fail the create
   * with a 404 that reads like a missing image. One that exists must have Cove's settings.
   */
  async #ensureRegionNetwork(spec: EnvironmentSpec): Promise<void> {
    if (spec.network !== 'region') return;
    const name = regionNetworkName(spec.region);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const problems = regionNetworkProblems(await this.#docker.getNetwork(name).inspect(), spec.region);
        if (problems.length > 0) {
          throw new SandboxError(
            'COVE_ERR_SANDBOX_NETWORK',
            `${problems.join('; ')}: remove it, Cove remakes it`,
          );
        }
        return;
      } catch (err) {
        if (statusCode(err) !== 404) throw backendError(err, 'network inspect');
      }
      try {
        await this.#docker.createNetwork(regionNetworkOptions(spec.region));
        this.#logger?.info('region network created', { name });
      } catch (err) {
        // 409: another process made it first; look again.
        if (isEngineDiskFull(err)) throw hostFullError(err, `network create ${name}`);
        if (statusCode(err) !== 409) {
          const message = `cannot create network ${name}: ${String(err)}`;
          throw new SandboxError('COVE_ERR_SANDBOX_NETWORK', message, { cause: err });
        }
      }
    }
    throw new SandboxError('COVE_ERR_SANDBOX_NETWORK', `network ${name} kept changing under us`);
  }
}

function statusFromInspect(info: Docker.ContainerInspectInfo, key: EnvironmentKey): EnvironmentStatus {
  const running = info.State.Running && !info.State.Paused;
  const startedAt = parseDockerDate(info.State.StartedAt);
  const finishedAt = parseDockerDate(info.State.FinishedAt);
  let stopReason: string | undefined;
  if (!running) {
    if (info.State.OOMKilled) {
      stopReason = 'oom';
    } else if (finishedAt) {
      stopReason = `exited:${info.State.ExitCode}`;
    }
  }
  const hash = info.Config.Labels[LABEL_SPEC_HASH];
  return {
    ownerId: key.ownerId,
    region: key.region,
    state: running ? 'running' : 'stopped',
    id: info.Id,
    ...(hash !== undefined && { specHash: hash }),
    ...(startedAt && { startedAt }),
    ...(stopReason !== undefined && { stopReason }),
  };
}

/** Docker reports "never" as 0001-01-01T00:00:00Z. */
function parseDockerDate(value: string | undefined): Date | undefined {
  if (!value || value.startsWith('0001-')) {
    return undefined;
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
