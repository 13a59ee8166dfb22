/**
 * SandboxDriver over the Docker Engine API (dockerode). One container per (owner, region), found
 * by its deterministic name and described by its labels, so every answer comes from the engine
 * and a restarted server sees exactly what is running.
 */
import type { DockerEngine, HttpDockerEngineOptions } from './http-docker-engine.js';
import { HttpDockerEngine } from './http-docker-engine.js';
import { watchEnvironmentEvents } from './docker-events.js';
import { DockerExec } from './docker-exec.js';
import { DockerLifecycle } from './docker-lifecycle.js';
import { DockerShells } from './docker-shells.js';
import { checkEngineVersions } from './engine-version.js';
import type {
  BackendVersionCheck,
  Disposable,
  EnvironmentEvent,
  EnvironmentKey,
  EnvironmentSpec,
  EnvironmentStatus,
  ExecOptions,
  ExecResult,
  SandboxDriver,
  SandboxLogger,
  Shell,
  ShellOptions,
} from '../sandbox-driver.js';

export { isEngineDiskFull } from './docker-errors.js';

/**
 * Where the engine is: the local socket, or a remote endpoint (TLS when ca/cert/key are given).
 * The engine's own options; unset port and protocol get their defaults in `toEngineOptions`.
 */
export type DockerConnectionOptions = HttpDockerEngineOptions;

export interface DockerSandboxDriverOptions {
  /**
   * A ready client (tests may pass dockerode); otherwise a light HttpDockerEngine is made from
   * `connection`.
   */
  readonly docker?: DockerEngine;
  readonly connection?: DockerConnectionOptions;
  readonly logger?: SandboxLogger;
  /**
   * Check that the home and credentials host paths exist before creating a container. Docker
   * silently creates or binds whatever is there; turn this off only when the engine is remote and
   * the paths live on its host, not ours.
   */
  readonly verifyHostPaths?: boolean;
  /** Seconds `stop` waits for a clean exit before SIGKILL. */
  readonly stopTimeoutS?: number;
}

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/**
 * The public face of the Docker backend; each sub-domain lives in its own file: lifecycle
 * (docker-lifecycle.ts), exec (docker-exec.ts), shells (docker-shells.ts), events
 * (docker-events.ts).
 */
export class DockerSandboxDriver implements SandboxDriver {
  readonly #docker: DockerEngine;
  readonly #logger: SandboxLogger | undefined;
  readonly #lifecycle: DockerLifecycle;
  readonly #exec: DockerExec;
  readonly #shells: DockerShells;

  constructor(options: DockerSandboxDriverOptions = {}) {
    this.#docker = options.docker ?? new HttpDockerEngine(toEngineOptions(options.connection));
    this.#logger = options.logger;
    this.#lifecycle = new DockerLifecycle(this.#docker, {
      logger: options.logger,
      verifyHostPaths: options.verifyHostPaths ?? true,
      stopTimeoutS: options.stopTimeoutS ?? 3,
    });
    this.#exec = new DockerExec(this.#docker, this.#lifecycle, options.logger);
    this.#shells = new DockerShells(this.#docker, this.#exec, options.logger);
  }

  /** The underlying client, for callers that need an engine call this contract does not cover. */
  get docker(): DockerEngine {
    return this.#docker;
  }

  ensure(spec: EnvironmentSpec): Promise<EnvironmentStatus> {
    return this.#lifecycle.ensure(spec);
  }

  status(key: EnvironmentKey): Promise<EnvironmentStatus> {
    return this.#lifecycle.status(key);
  }

  stop(key: EnvironmentKey): Promise<void> {
    return this.#lifecycle.stop(key);
  }

  remove(key: EnvironmentKey): Promise<void> {
    return this.#lifecycle.remove(key);
  }

  list(): Promise<EnvironmentStatus[]> {
    return this.#lifecycle.list();
  }

  openShell(key: EnvironmentKey, options: ShellOptions): Promise<Shell> {
    return this.#shells.open(key, options);
  }

  listHeldShells(key: EnvironmentKey): Promise<string[]> {
    return this.#shells.listHeld(key);
  }

  exec(key: EnvironmentKey, cmd: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.#exec.exec(key, cmd, options);
  }

  async ping(): Promise<boolean> {
    try {
      await this.#docker.ping();
      return true;
    } catch {
      return false;
    }
  }

  onEnvironmentEvent(listener: (event: EnvironmentEvent) => void): Disposable {
    return watchEnvironmentEvents(this.#docker, this.#logger, listener);
  }

  /** The engine, containerd and runc the engine reports, against known escapes (engine-version.ts). */
  async checkVersions(accept: readonly string[]): Promise<BackendVersionCheck> {
    return checkEngineVersions(await this.#docker.version(), accept);
  }
}

function toEngineOptions(connection: DockerConnectionOptions = {}): HttpDockerEngineOptions {
  if (connection.host !== undefined) {
    const tls = connection.ca !== undefined || connection.cert !== undefined;
    return {
      host: connection.host,
      port: connection.port ?? (tls ? 2376 : 2375),
      protocol: connection.protocol ?? (tls ? 'https' : 'http'),
      ...(connection.ca !== undefined && { ca: connection.ca }),
      ...(connection.cert !== undefined && { cert: connection.cert }),
      ...(connection.key !== undefined && { key: connection.key }),
    };
  }
  return { socketPath: connection.socketPath ?? DEFAULT_DOCKER_SOCKET };
}
