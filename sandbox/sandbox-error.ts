/**
 * Coded failures of a SandboxDriver. `message` is for the log (it may name paths and container
 * ids); the server maps `code` to what the user reads and to an HTTP status.
 */
export type SandboxErrorCode =
  /** The backend (Docker engine) cannot be reached. */
  | 'COVE_ERR_SANDBOX_UNAVAILABLE'
  /** The environment image is not present (run scripts/build-images.sh). */
  | 'COVE_ERR_SANDBOX_IMAGE_MISSING'
  /** The home's host path does not exist. */
  | 'COVE_ERR_SANDBOX_HOME_MISSING'
  /** The credentials directory's host path does not exist. */
  | 'COVE_ERR_SANDBOX_CREDENTIALS_MISSING'
  /** The environment does not exist or is not running. */
  | 'COVE_ERR_SANDBOX_NOT_RUNNING'
  /** An exec did not finish within its timeout and was killed. */
  | 'COVE_ERR_SANDBOX_EXEC_TIMEOUT'
  /** The region's network is missing and cannot be made, or exists with looser settings. */
  | 'COVE_ERR_SANDBOX_NETWORK'
  /** The container runtime the region asks for (e.g. runsc) is not configured in the engine. */
  | 'COVE_ERR_SANDBOX_RUNTIME_MISSING'
  /** The spec cannot be turned into a container (bad env var name, bad limits). */
  | 'COVE_ERR_SANDBOX_BAD_SPEC'
  /**
   * The engine's own storage (its data root, e.g. /var/lib/docker) is full: it cannot make or
   * start a container. Running containers are not affected.
   */
  | 'COVE_ERR_SANDBOX_HOST_FULL'
  /** Anything else the backend refused. */
  | 'COVE_ERR_SANDBOX_BACKEND';

export class SandboxError extends Error {
  override readonly name = 'SandboxError';

  constructor(
    readonly code: SandboxErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
