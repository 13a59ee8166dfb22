/** References to things on the engine's host, for EnvironmentSpec's `home` and `credentials`. */
import type { HostDirectory } from './sandbox-driver.js';

/** A directory on the machine that runs the environments (see `HostDirectory`). */
export function hostDirectory(path: string): HostDirectory {
  return { kind: 'host-directory', path };
}
