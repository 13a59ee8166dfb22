/**
 * SECURITY-TESTS F08 at the driver: the engine's "no space left on device" on create or start
 * becomes COVE_ERR_SANDBOX_HOST_FULL (not a generic backend error), and a container made just now
 * that cannot start is removed rather than left in `created`. A fake engine that answers like
 * Docker 20.10 does with a full data root (seen in tests/security/engine-disk-full.test.ts).
 */
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { DockerSandboxDriver, isEngineDiskFull } from '../../../../sandbox/docker/docker-sandbox-driver.js';
import {
  DockerEngineError,
  type DockerEngineContainer,
} from '../../../../sandbox/docker/http-docker-engine.js';
import { fakeDockerEngine } from './fake-docker-engine.js';
import type { EnvironmentSpec } from '../../../../sandbox/sandbox-driver.js';
import { SandboxError } from '../../../../sandbox/sandbox-error.js';

const full = (what: string) =>
  new DockerEngineError(
    500,
    `(HTTP code 500) server error - ${what} /var/lib/docker/overlay2/0f3c-init: no space left on device`,
  );

const spec: EnvironmentSpec = {
  ownerId: 'u-1',
  region: 'us-east-1',
  image: 'cove/sandbox:latest',
  limits: {
    pidsLimit: 64,
    memoryBytes: 256 * 1024 ** 2,
    cpuMillis: 500,
    tmpSizeBytes: 16 * 1024 ** 2,
  },
  env: {},
};

/** Just enough engine: one container name, create/start failures on demand, calls recorded. */
function fakeEngine(failures: { create?: Error; start?: Error }) {
  const calls: string[] = [];
  let exists = false;
  const container: DockerEngineContainer = {
    inspect: async () => {
      if (!exists) throw new DockerEngineError(404, 'No such container');
      return {
        Id: 'c1',
        State: { Status: 'created', Running: false, Paused: false },
        Config: { Labels: {} },
      } as unknown as Docker.ContainerInspectInfo;
    },
    start: async () => {
      calls.push('start');
      if (failures.start) throw failures.start;
    },
    unpause: async () => undefined,
    stop: async () => undefined,
    remove: async () => {
      calls.push('remove');
      exists = false;
    },
    exec: async () => {
      throw new Error('not used');
    },
  };
  const engine = fakeDockerEngine(container, async () => {
    calls.push('create');
    if (failures.create) throw failures.create;
    exists = true;
  });
  return { engine, calls, exists: () => exists };
}

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: unknown) => (error instanceof SandboxError ? error.code : String(error)),
  );

describe('DockerSandboxDriver with a full engine data root', () => {
  it('F08 create refused for lack of space is COVE_ERR_SANDBOX_HOST_FULL, with nothing left behind', async () => {
    const { engine, calls, exists } = fakeEngine({ create: full('mkdir') });
    const driver = new DockerSandboxDriver({ docker: engine, verifyHostPaths: false });
    expect(await codeOf(driver.ensure(spec))).toBe('COVE_ERR_SANDBOX_HOST_FULL');
    expect(calls).toEqual(['create']);
    expect(exists()).toBe(false);
  });

  it('F08 a container made just now that cannot start for lack of space is removed, not left in created', async () => {
    const { engine, calls, exists } = fakeEngine({ start: full('open') });
    const driver = new DockerSandboxDriver({ docker: engine, verifyHostPaths: false });
    expect(await codeOf(driver.ensure(spec))).toBe('COVE_ERR_SANDBOX_HOST_FULL');
    expect(calls).toEqual(['create', 'start', 'remove']);
    expect(exists()).toBe(false);
  });

  it('F08 other engine failures keep their codes (a start failing otherwise keeps its container)', async () => {
    const other = fakeEngine({
      start: new DockerEngineError(500, 'OCI runtime create failed: exec format error'),
    });
    const driver = new DockerSandboxDriver({ docker: other.engine, verifyHostPaths: false });
    expect(await codeOf(driver.ensure(spec))).toBe('COVE_ERR_SANDBOX_BACKEND');
    expect(other.calls).toEqual(['create', 'start']);
    expect(other.exists()).toBe(true);
  });

  it('F08 recognises the kernel words for a full disk only', () => {
    expect(isEngineDiskFull(full('mkdir'))).toBe(true);
    expect(isEngineDiskFull(new Error('write /var/lib/docker/x: disk quota exceeded'))).toBe(true);
    expect(isEngineDiskFull(new SandboxError('COVE_ERR_SANDBOX_HOST_FULL', 'x'))).toBe(true);
    expect(isEngineDiskFull(new SandboxError('COVE_ERR_SANDBOX_BACKEND', 'no space left on device'))).toBe(
      false,
    );
    expect(isEngineDiskFull(new DockerEngineError(404, 'No such image: cove/sandbox:latest'))).toBe(false);
  });
});
