/**
 * What the Docker engine's failures mean for the caller: each becomes a SandboxError whose code
 * says what to do (engine down, image missing, host full, not running, ...).
 */
import { containerName } from '../names.js';
import type { EnvironmentKey, EnvironmentSpec } from '../sandbox-driver.js';
import { SandboxError } from '../sandbox-error.js';

export function statusCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'statusCode' in err) {
    const code = (err as { statusCode: unknown }).statusCode;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

/** The engine's answer for an exec in a container that is no longer running. */
export function stoppedMeanwhile(err: unknown): boolean {
  const code = statusCode(err);
  const message =
    typeof err === 'object' && err !== null
      ? String(
          (err as { json?: { message?: unknown } }).json?.message ??
            (err as { message?: unknown }).message ??
            '',
        )
      : '';
  return code === 409 || (code === 500 && /is not running/.test(message));
}

export function isNotRunning(err: unknown): boolean {
  return (
    statusCode(err) === 404 ||
    statusCode(err) === 409 ||
    (err instanceof SandboxError && err.code === 'COVE_ERR_SANDBOX_NOT_RUNNING')
  );
}

export function isConnectionError(err: unknown): boolean {
  const code =
    typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'ECONNRESET';
}

export function backendError(err: unknown, what: string): SandboxError {
  if (err instanceof SandboxError) {
    return err;
  }
  if (isConnectionError(err)) {
    return new SandboxError(
      'COVE_ERR_SANDBOX_UNAVAILABLE',
      `Docker engine unreachable (${what}): ${String(err)}`,
      {
        cause: err,
      },
    );
  }
  return new SandboxError('COVE_ERR_SANDBOX_BACKEND', `Docker ${what} failed: ${String(err)}`, {
    cause: err,
  });
}

/**
 * The engine answers a full data root with a 500 whose message ends in the kernel's words, e.g.
 * `mkdir /var/lib/docker/overlay2/<id>-init: no space left on device`.
 */
export function isEngineDiskFull(err: unknown): boolean {
  if (err instanceof SandboxError) return err.code === 'COVE_ERR_SANDBOX_HOST_FULL';
  return /no space left on device|disk quota exceeded/i.test(String(err));
}

export function hostFullError(err: unknown, what: string): SandboxError {
  return new SandboxError(
    'COVE_ERR_SANDBOX_HOST_FULL',
    `Docker ${what} failed: the engine's storage is full: ${String(err)}`,
    {
      cause: err,
    },
  );
}

export function mapCreateError(err: unknown, spec: EnvironmentSpec): SandboxError {
  if (isEngineDiskFull(err)) return hostFullError(err, 'create');
  if (spec.runtime !== undefined && /unknown runtime/i.test(String(err))) {
    return new SandboxError(
      'COVE_ERR_SANDBOX_RUNTIME_MISSING',
      `the engine has no runtime ${JSON.stringify(spec.runtime)}; add it to daemon.json "runtimes" (see docs/hardening.md) or remove it from the region`,
      { cause: err },
    );
  }
  if (statusCode(err) === 404) {
    return new SandboxError(
      'COVE_ERR_SANDBOX_IMAGE_MISSING',
      `image ${spec.image} is not present on the Docker engine; build it with scripts/build-images.sh`,
      { cause: err },
    );
  }
  return hostPathError(err, spec, 'create') ?? backendError(err, 'create');
}

export function mapStartError(err: unknown, spec: EnvironmentSpec, name: string): SandboxError {
  if (isEngineDiskFull(err)) return hostFullError(err, `start ${name}`);
  return hostPathError(err, spec, `start ${name}`) ?? backendError(err, 'start');
}

/**
 * The engine checks bind sources itself (at create, and again at start if one vanished since),
 * which is the only check when host paths are not verified here (remote engine).
 */
export function hostPathError(err: unknown, spec: EnvironmentSpec, what: string): SandboxError | undefined {
  const message = String(err);
  if (!/bind source path does not exist|error while creating mount source path/i.test(message)) {
    return undefined;
  }
  const code =
    spec.credentials !== undefined && message.includes(spec.credentials.path)
      ? 'COVE_ERR_SANDBOX_CREDENTIALS_MISSING'
      : 'COVE_ERR_SANDBOX_HOME_MISSING';
  return new SandboxError(code, `Docker ${what} failed: ${message}`, { cause: err });
}

/** One engine call; its failure becomes a coded SandboxError. */
export async function engineCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    // The container stopped between the check and the exec (Docker 20.10 answers exec start
    // with 500 "… is not running"): the caller's code for that is NOT_RUNNING, not a backend fault.
    if (what.startsWith('exec') && stoppedMeanwhile(err))
      throw new SandboxError('COVE_ERR_SANDBOX_NOT_RUNNING', 'the environment stopped', { cause: err });
    throw backendError(err, what);
  }
}

/** An engine call on a container that must be running; 404/409 become NOT_RUNNING. */
export async function runningCall<T>(key: EnvironmentKey, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const code = statusCode(err);
    if (code === 404 || code === 409) {
      throw new SandboxError(
        'COVE_ERR_SANDBOX_NOT_RUNNING',
        `environment ${containerName(key)} is not running`,
        { cause: err },
      );
    }
    throw backendError(err, 'exec');
  }
}
