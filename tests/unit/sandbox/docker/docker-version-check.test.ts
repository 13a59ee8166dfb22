// The version gate through the driver contract: the Docker driver reads the engine's /version and
// answers with neutral findings, so the server never sees a Docker report.
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { DockerSandboxDriver } from '../../../../sandbox/docker/docker-sandbox-driver.js';
import type { DockerEngineContainer } from '../../../../sandbox/docker/http-docker-engine.js';
import { fakeDockerEngine } from './fake-docker-engine.js';

const oldEngine = {
  Version: '20.10.24',
  Components: [
    { Name: 'Engine', Version: '20.10.24' },
    { Name: 'containerd', Version: '1.6.20' },
    { Name: 'runc', Version: '1.1.5' },
  ],
} as unknown as Docker.DockerVersion;

const driverOn = (report: Docker.DockerVersion) =>
  new DockerSandboxDriver({
    docker: { ...fakeDockerEngine({} as DockerEngineContainer), version: async () => report },
  });

describe('DockerSandboxDriver.checkVersions', () => {
  it('lists the known escapes an old engine leaves open, with its versions for the log', async () => {
    const check = await driverOn(oldEngine).checkVersions([]);
    expect(check.findings.map((f) => f.component)).toEqual(['runc', 'runc', 'containerd', 'engine']);
    expect(check.findings[0]).toMatchObject({ reported: '1.1.5', ids: expect.arrayContaining([]) });
    expect(check.versions).toEqual({
      engine: { reported: '20.10.24' },
      containerd: { reported: '1.6.20' },
      runc: { reported: '1.1.5' },
    });
  });

  it('drops what the operator accepts', async () => {
    const check = await driverOn(oldEngine).checkVersions([
      'runc 1.1.5',
      'containerd 1.6.20',
      'engine 20.10.24',
    ]);
    expect(check.findings).toEqual([]);
  });
});
