// The Docker driver on the real engine with the real sandbox image (scripts/build-images.sh).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DEFAULT_LIMITS } from '../../../sandbox/environment-image.js';
import { hostDirectory } from '../../../sandbox/host-directory.js';
import { DockerSandboxDriver } from '../../../sandbox/docker/docker-sandbox-driver.js';
import { LABEL_OWNER, MANAGED_LABEL_FILTER } from '../../../sandbox/names.js';
import type { EnvironmentEvent, EnvironmentKey, EnvironmentSpec } from '../../../sandbox/sandbox-driver.js';
import { describeSandboxDriverContract } from './driver-contract.js';

const IMAGE = 'cove/sandbox:latest';
const RUN = randomBytes(4).toString('hex');
const OWNER_PREFIX = `test-${RUN}-`;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });

const specFor = (key: EnvironmentKey, limits: Partial<typeof DEFAULT_LIMITS> = {}): EnvironmentSpec => ({
  ...key,
  image: IMAGE,
  // Small enough that a few test environments fit next to whatever else runs on the machine.
  limits: { ...DEFAULT_LIMITS, memoryBytes: 512 * 1024 ** 2, ...limits },
  env: { COVE_USER: 'test', COVE_REGION: key.region },
});

/** Whatever a crashed or failed run left behind, found by label, not by memory. */
async function removeLeftovers(): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [MANAGED_LABEL_FILTER] } });
  await Promise.allSettled(
    containers
      .filter((c) => c.Labels[LABEL_OWNER]?.startsWith(OWNER_PREFIX))
      .map((c) => docker.getContainer(c.Id).remove({ force: true })),
  );
}

beforeAll(async () => {
  try {
    await docker.getImage(IMAGE).inspect();
  } catch {
    throw new Error(`Image ${IMAGE} is missing: run scripts/build-images.sh first, then re-run these tests.`);
  }
});

afterAll(removeLeftovers);

describeSandboxDriverContract('docker', {
  createDriver: () => new DockerSandboxDriver({ docker }),
  specFor,
  ownerPrefix: OWNER_PREFIX,
  runsCommands: true,
});

describe('DockerSandboxDriver specifics', () => {
  const driver = new DockerSandboxDriver();
  const key = (label: string): EnvironmentKey => ({
    ownerId: `${OWNER_PREFIX}${label}-${randomBytes(3).toString('hex')}`,
    region: 'eu-west-1',
  });
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'cove-sandbox-test-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('refuses to create an environment whose home path does not exist', async () => {
    const k = key('nohome');
    await expect(
      driver.ensure({ ...specFor(k), home: hostDirectory(join(scratch, 'absent')) }),
    ).rejects.toMatchObject({
      code: 'COVE_ERR_SANDBOX_HOME_MISSING',
    });
    expect((await driver.status(k)).state).toBe('missing');
  });

  it('maps the engine refusing a missing bind source when paths are not checked here', async () => {
    const unchecked = new DockerSandboxDriver({ verifyHostPaths: false });
    const k = key('remotehome');
    await expect(
      unchecked.ensure({ ...specFor(k), home: hostDirectory(join(scratch, 'absent-remote')) }),
    ).rejects.toMatchObject({ code: 'COVE_ERR_SANDBOX_HOME_MISSING' });
  });

  it('says how to get the image when it is missing', async () => {
    await expect(
      driver.ensure({ ...specFor(key('noimage')), image: 'cove/sandbox:does-not-exist' }),
    ).rejects.toMatchObject({
      code: 'COVE_ERR_SANDBOX_IMAGE_MISSING',
      message: expect.stringContaining('scripts/build-images.sh'),
    });
  });

  it('binds the home and the credentials directory (read-only) and shows the managed profile', async () => {
    const k = key('home');
    const home = join(scratch, 'home');
    const creds = join(scratch, 'creds');
    const { mkdir, chown, writeFile } = await import('node:fs/promises');
    await mkdir(home);
    await chown(home, 1000, 1000);
    await mkdir(creds);
    await writeFile(join(creds, 'marker'), 'creds');
    await driver.ensure({ ...specFor(k), home: hostDirectory(home), credentials: hostDirectory(creds) });
    const run = (script: string) => driver.exec(k, ['sh', '-c', script]);
    expect((await run('echo kept > ~/file && cat /run/cove/marker')).stdout.toString()).toBe('creds');
    expect((await run('echo x > /run/cove/marker')).exitCode).not.toBe(0);
    const login = await driver.exec(k, ['bash', '-lic', 'true'], {
      env: { COVE_USER: 'alice', COVE_REGION: 'eu-west-1', COVE_IDENTITY: '123456789012 / ReadOnlyAccess' },
    });
    const banner = login.stdout.toString();
    expect(banner).toContain('alice');
    expect(banner).toContain('123456789012 / ReadOnlyAccess');
    expect(banner).toContain('/home/cloudshell-user');
    expect(banner.match(/Cove shell/g)).toHaveLength(1);
    // The profile seeded the home from /etc/skel as the user.
    expect((await run('ls -A ~ | sort | tr "\\n" " "')).stdout.toString()).toContain('.bashrc');
    await driver.remove(k);
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(join(home, 'file'), 'utf8')).toBe('kept\n');
  });

  it('ships the tools a cloud shell promises', async () => {
    const k = key('tools');
    await driver.ensure(specFor(k));
    const result = await driver.exec(k, [
      'bash',
      '-c',
      'set -e; aws --version; python3 -c "import boto3; print(boto3.__version__)"; node --version; git --version; jq --version',
    ]);
    expect(result.exitCode, result.stderr.toString()).toBe(0);
    expect(result.stdout.toString()).toMatch(/aws-cli\/2\./);
  });

  it('reports a stop through onEnvironmentEvent, and an out-of-memory kill as oom', async () => {
    const k = key('events');
    await driver.ensure(specFor(k, { memoryBytes: 96 * 1024 ** 2 }));
    const events: EnvironmentEvent[] = [];
    const subscription = driver.onEnvironmentEvent((event) => {
      if (event.ownerId === k.ownerId) events.push(event);
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await driver.exec(k, ['python3', '-c', 'b = bytearray(400 * 1024 * 1024)'], { timeoutMs: 20_000 });
      await driver.stop(k);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !events.some((e) => e.kind === 'died')) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(events.map((e) => e.kind)).toContain('oom');
      expect(events.find((e) => e.kind === 'died')).toMatchObject({ ...k, kind: 'died' });
    } finally {
      subscription.dispose();
    }
  });
});
