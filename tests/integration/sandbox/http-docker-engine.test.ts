// The light Engine API client on the real engine: the whole driver contract over it (the
// driver's own test runs the contract over dockerode), and the error shape the driver reads.
import { randomBytes } from 'node:crypto';

import { afterAll, describe, expect, it } from 'vitest';

import { DEFAULT_LIMITS } from '../../../sandbox/environment-image.js';
import { DockerSandboxDriver } from '../../../sandbox/docker/docker-sandbox-driver.js';
import { DockerEngineError, HttpDockerEngine } from '../../../sandbox/docker/http-docker-engine.js';
import { LABEL_OWNER, MANAGED_LABEL_FILTER } from '../../../sandbox/names.js';
import type { EnvironmentKey, EnvironmentSpec } from '../../../sandbox/sandbox-driver.js';
import { describeSandboxDriverContract } from './driver-contract.js';

const IMAGE = 'cove/sandbox:latest';
const OWNER_PREFIX = `test-http-${randomBytes(4).toString('hex')}-`;
const engine = new HttpDockerEngine({ socketPath: '/var/run/docker.sock' });

const specFor = (key: EnvironmentKey, limits: Partial<typeof DEFAULT_LIMITS> = {}): EnvironmentSpec => ({
  ...key,
  image: IMAGE,
  limits: { ...DEFAULT_LIMITS, memoryBytes: 512 * 1024 ** 2, ...limits },
  env: { COVE_USER: 'test', COVE_REGION: key.region },
});

afterAll(async () => {
  const containers = await engine.listContainers({ all: true, filters: { label: [MANAGED_LABEL_FILTER] } });
  await Promise.allSettled(
    containers
      .filter((c) => c.Labels[LABEL_OWNER]?.startsWith(OWNER_PREFIX))
      .map((c) => engine.getContainer(c.Id).remove({ force: true })),
  );
});

describeSandboxDriverContract('docker over HttpDockerEngine', {
  createDriver: () => new DockerSandboxDriver({ docker: engine }),
  specFor,
  ownerPrefix: OWNER_PREFIX,
  runsCommands: true,
});

describe('HttpDockerEngine', () => {
  it('answers ping and reports engine errors with their status and the engine message', async () => {
    expect(String(await engine.ping())).toBe('OK');
    const missing = `${OWNER_PREFIX}missing`;
    const error = await engine
      .getContainer(missing)
      .inspect()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(DockerEngineError);
    expect((error as DockerEngineError).statusCode).toBe(404);
    expect((error as DockerEngineError).message).toContain(missing);
  });

  it('tells "already stopped" (304) apart from success, as the driver expects', async () => {
    const driver = new DockerSandboxDriver({ docker: engine });
    const key = { ownerId: `${OWNER_PREFIX}stop-${randomBytes(3).toString('hex')}`, region: 'eu-west-1' };
    const status = await driver.ensure(specFor(key));
    const container = engine.getContainer(status.id as string);
    await container.stop({ t: 0 });
    const again = await container.stop({ t: 0 }).then(
      () => 0,
      (e: unknown) => (e as DockerEngineError).statusCode,
    );
    expect(again).toBe(304);
    await driver.remove(key);
  });
});
