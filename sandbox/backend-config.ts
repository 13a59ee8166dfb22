/**
 * Which backend runs a region's environments, as config names it (`regions[].backend`). The server
 * passes its region config through; only this package reads the backend's own keys.
 */

/** The Docker Engine API: the local socket, or a remote engine (TLS when certificate files are given). */
export interface DockerBackendConfig {
  readonly type: 'docker';
  readonly socketPath?: string;
  readonly host?: string;
  readonly port?: number;
  readonly caPath?: string;
  readonly certPath?: string;
  readonly keyPath?: string;
}

export type BackendConfig = DockerBackendConfig;

/** What this package reads of a region's config (the server's RegionConfig fits it). */
export interface RegionBackendConfig {
  readonly id: string;
  readonly backend?: BackendConfig;
  /** The spelling from before `backend`: a Docker endpoint, `backend: { type: 'docker', ... }`. */
  readonly docker?: Omit<DockerBackendConfig, 'type'>;
}

/** The region's backend: `backend` when given, else Docker (at `docker`'s endpoint, or the local socket). */
export function backendOf(region: RegionBackendConfig): BackendConfig {
  return region.backend ?? { type: 'docker', ...region.docker };
}

/**
 * True when the region's environments run on this machine, so Cove's firewall here (the egress
 * policy) covers them; a remote engine's host must be hardened there (docs/hardening.md).
 */
export function runsOnThisHost(region: RegionBackendConfig): boolean {
  const backend = backendOf(region);
  switch (backend.type) {
    case 'docker':
      return backend.host === undefined || backend.host === '';
  }
}
