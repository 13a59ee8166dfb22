// Which backend a region names: `backend` when given, else Docker at the older `docker` endpoint
// or on the local socket; and whether its environments sit behind this host's firewall.
import { describe, expect, it } from 'vitest';
import { backendOf, createDriver, runsOnThisHost } from '../../../sandbox/index.js';
import { DockerSandboxDriver } from '../../../sandbox/docker/docker-sandbox-driver.js';
import { dockerConnectionFor } from '../../../sandbox/docker/docker-driver-factory.js';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('backendOf', () => {
  it('reads Docker on the local socket from a region that names nothing', () => {
    expect(backendOf({ id: 'us-east-1' })).toEqual({ type: 'docker' });
    expect(dockerConnectionFor(backendOf({ id: 'us-east-1' }))).toEqual({
      socketPath: '/var/run/docker.sock',
    });
  });

  it('maps the older docker key to a Docker backend, and prefers backend when given', () => {
    expect(backendOf({ id: 'eu-west-1', docker: { socketPath: '/run/d.sock' } })).toEqual({
      type: 'docker',
      socketPath: '/run/d.sock',
    });
    expect(
      backendOf({ id: 'eu-west-1', backend: { type: 'docker', host: 'engine.example', port: 2375 } }),
    ).toEqual({ type: 'docker', host: 'engine.example', port: 2375 });
    expect(dockerConnectionFor({ type: 'docker', host: 'engine.example', port: 2375 })).toEqual({
      host: 'engine.example',
      port: 2375,
      protocol: 'http',
    });
  });
});

describe('runsOnThisHost', () => {
  it('is true for the local engine and false for a remote one, however it is spelled', () => {
    expect(runsOnThisHost({ id: 'us-east-1' })).toBe(true);
    expect(runsOnThisHost({ id: 'us-east-1', backend: { type: 'docker', socketPath: '/x.sock' } })).toBe(
      true,
    );
    expect(runsOnThisHost({ id: 'us-east-1', docker: { host: 'engine.example' } })).toBe(false);
    expect(runsOnThisHost({ id: 'us-east-1', backend: { type: 'docker', host: 'engine.example' } })).toBe(
      false,
    );
  });
});

describe('createDriver', () => {
  it('makes the Docker driver for a Docker backend', () => {
    expect(createDriver({ id: 'us-east-1' }, silent)).toBeInstanceOf(DockerSandboxDriver);
    expect(createDriver({ id: 'us-east-1', backend: { type: 'docker', host: 'h' } }, silent)).toBeInstanceOf(
      DockerSandboxDriver,
    );
  });
});
