/**
 * The engine-level rest of a fake Docker engine for driver unit tests: one container for every
 * name, and the calls those tests never make failing loudly. Each test brings its own container
 * (and `createContainer` when it creates one).
 */
import type Docker from 'dockerode';
import type { DockerEngine, DockerEngineContainer } from '../../../../sandbox/docker/http-docker-engine.js';

export function fakeDockerEngine(
  container: DockerEngineContainer,
  createContainer: DockerEngine['createContainer'] = async () => undefined,
): DockerEngine {
  const unused = async (): Promise<never> => {
    throw new Error('not used');
  };
  return {
    createContainer,
    getContainer: () => container,
    listContainers: async () => [],
    getEvents: unused,
    ping: async () => 'OK',
    version: async () => ({}) as Docker.DockerVersion,
    createNetwork: async () => undefined,
    getNetwork: () => ({ inspect: unused }),
    modem: { demuxStream: () => undefined },
  } satisfies DockerEngine;
}
