/**
 * An environment that stops between the driver's "is it running?" and its exec: Docker 20.10
 * answers the exec start with 500 "Container … is not running" (seen in a full test run when a
 * terminal's close stopped its environment). The driver must report COVE_ERR_SANDBOX_NOT_RUNNING,
 * the contract's code for that, not a backend fault; any other 500 stays a backend error.
 */
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { DockerSandboxDriver } from '../../../../sandbox/docker/docker-sandbox-driver.js';
import {
  DockerEngineError,
  type DockerEngine,
  type DockerEngineContainer,
} from '../../../../sandbox/docker/http-docker-engine.js';
import { fakeDockerEngine } from './fake-docker-engine.js';
import { SandboxError } from '../../../../sandbox/sandbox-error.js';

const key = { ownerId: 'u-1', region: 'us-east-1' };

/** A container that inspects as running and whose exec start fails with `startError`. */
function engineWhoseExecStartFails(startError: Error): DockerEngine {
  const container = {
    inspect: async () =>
      ({
        Id: 'c1',
        State: { Status: 'running', Running: true, Paused: false },
        Config: { Labels: {} },
      }) as unknown as Docker.ContainerInspectInfo,
    start: async () => undefined,
    unpause: async () => undefined,
    stop: async () => undefined,
    remove: async () => undefined,
    exec: async () => ({
      start: async () => {
        throw startError;
      },
      inspect: async () => ({ ExitCode: 0, Running: false }),
      resize: async () => undefined,
    }),
  } as unknown as DockerEngineContainer;
  return fakeDockerEngine(container);
}

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: unknown) => (error instanceof SandboxError ? error.code : String(error)),
  );

describe('DockerSandboxDriver when the environment stops under an exec', () => {
  const stopped = new DockerEngineError(
    500,
    '(HTTP code 500) server error - Container ca0d2fe868da is not running: Exited (0) Less than a second ago',
  );

  it('exec, listHeldShells and openShell report NOT_RUNNING', async () => {
    const driver = new DockerSandboxDriver({
      docker: engineWhoseExecStartFails(stopped),
      verifyHostPaths: false,
    });
    expect(await codeOf(driver.exec(key, ['true']))).toBe('COVE_ERR_SANDBOX_NOT_RUNNING');
    expect(await codeOf(driver.listHeldShells(key))).toBe('COVE_ERR_SANDBOX_NOT_RUNNING');
    expect(await codeOf(driver.openShell(key, { cmd: ['bash'], cols: 80, rows: 24 }))).toBe(
      'COVE_ERR_SANDBOX_NOT_RUNNING',
    );
  });

  it('any other engine failure of the exec stays a backend error', async () => {
    const other = new DockerEngineError(500, '(HTTP code 500) server error - oci runtime error');
    const driver = new DockerSandboxDriver({
      docker: engineWhoseExecStartFails(other),
      verifyHostPaths: false,
    });
    expect(await codeOf(driver.exec(key, ['true']))).toBe('COVE_ERR_SANDBOX_BACKEND');
  });
});
