import { describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { buildConfig } from '../../../../server/config.js';
import {
  EnvironmentService,
  type EnvironmentChange,
} from '../../../../server/environments/environment-service.js';
import { FakeSandboxDriver } from './fake-sandbox-driver.js';
import type { HomeRef } from '../../../../sandbox/index.js';

const config = buildConfig({
  regions: [
    { id: 'us-east-1', name: 'US East' },
    { id: 'eu-west-1', name: 'Europe' },
  ],
  sandbox: {
    pidsLimit: 100,
    memoryBytes: 512 * 1024 ** 2,
    cpuMillis: 500,
    tmpSizeBytes: 64 * 1024 ** 2,
  },
});
const owner = { id: 'user-1', username: 'alice' };

async function make(
  homes?: { ensure(key: { ownerId: string; region: string }): Promise<HomeRef> },
  serviceConfig = config,
) {
  const drivers = new Map<string, FakeSandboxDriver>();
  const service = new EnvironmentService({
    config: serviceConfig,
    log: pino({ level: 'silent' }),
    driverFactory: (region) => {
      const driver = new FakeSandboxDriver();
      drivers.set(region.id, driver);
      return driver;
    },
    ...(homes ? { homes } : {}),
  });
  await service.init();
  return { service, drivers, us: drivers.get('us-east-1') as FakeSandboxDriver };
}

describe('EnvironmentService', () => {
  it('admits starts a bounded number at a time, in order, telling each waiting one its place; a running one never waits', async () => {
    const release = new Map<string, () => void>();
    const { service } = await make(
      {
        // The first user's home is slow to mount: her start holds the only slot meanwhile.
        ensure: (key) =>
          new Promise((resolve) => {
            const done = () => resolve({ kind: 'host-directory', path: `/homes/${key.ownerId}` });
            if (key.ownerId === 'user-1') release.set(key.ownerId, done);
            else done();
          }),
      },
      buildConfig({ ...config, sandbox: { ...config.sandbox, maxConcurrentStarts: 1 } }),
    );
    const running = { id: 'user-0', username: 'zoe' };
    await service.ensure(running, 'us-east-1');
    const phases = new Map<string, string[]>();
    const start = (user: { id: string; username: string }) => {
      phases.set(user.id, []);
      return service.ensure(user, 'us-east-1', (phase, detail) =>
        phases.get(user.id)?.push(detail?.ahead === undefined ? phase : `${phase} ${detail.ahead}`),
      );
    };
    const first = start(owner);
    await vi.waitFor(() => expect(release.has('user-1')).toBe(true));
    const second = start({ id: 'user-2', username: 'bob' });
    const third = start({ id: 'user-3', username: 'carol' });
    await vi.waitFor(() => expect(phases.get('user-3')).toEqual(['queued 1']));
    expect(phases.get('user-2')).toEqual(['queued 0']);
    // A new tab in a running environment answers at once, queue or not.
    await expect(start(running)).resolves.toMatchObject({ state: 'running' });
    release.get('user-1')?.();
    await Promise.all([first, second, third]);
    expect(phases.get('user-1')).toEqual(['creating', 'ready']);
    expect(phases.get('user-2')).toEqual(['queued 0', 'creating', 'ready']);
    expect(phases.get('user-3')).toEqual(['queued 1', 'queued 0', 'creating', 'ready']);
  });

  it('makes one driver per region and builds the spec from config', async () => {
    const { service, drivers, us } = await make({
      ensure: async (key) => ({ kind: 'host-directory', path: `/homes/${key.ownerId}` }),
    });
    expect([...drivers.keys()]).toEqual(['us-east-1', 'eu-west-1']);
    await service.ensure(owner, 'us-east-1');
    expect(us.specs[0]).toEqual({
      ownerId: 'user-1',
      region: 'us-east-1',
      network: 'region',
      image: 'cove/sandbox:latest',
      limits: {
        pidsLimit: 100,
        memoryBytes: 512 * 1024 ** 2,
        cpuMillis: 500,
        tmpSizeBytes: 64 * 1024 ** 2,
      },
      home: { kind: 'host-directory', path: '/homes/user-1' },
      env: {
        COVE_USER: 'alice',
        COVE_REGION: 'us-east-1',
        AWS_REGION: 'us-east-1',
        AWS_DEFAULT_REGION: 'us-east-1',
      },
    });
  });

  it('reports creating → ready for a new environment, starting for a stopped one, and answers a running one from memory', async () => {
    const { service, us } = await make();
    const phases: string[] = [];
    await service.ensure(owner, 'us-east-1', (p) => phases.push(p));
    expect(phases).toEqual(['creating', 'ready']);
    const calls = us.calls.length;
    phases.length = 0;
    await service.ensure(owner, 'us-east-1', (p) => phases.push(p));
    expect(phases).toEqual(['ready']);
    expect(us.calls.length).toBe(calls);
    await service.stop({ ownerId: owner.id, region: 'us-east-1' });
    phases.length = 0;
    await service.ensure(owner, 'us-east-1', (p) => phases.push(p));
    expect(phases).toEqual(['starting', 'ready']);
    expect(us.calls).not.toContain('remove us-east-1/user-1');
  });

  it('serializes stop and ensure for one environment, so a start after a stop wins', async () => {
    const { service, us } = await make();
    await service.ensure(owner, 'us-east-1');
    us.ensureDelayMs = 20;
    const key = { ownerId: owner.id, region: 'us-east-1' };
    const stopping = service.stop(key);
    await service.stop(key);
    const starting = service.ensure(owner, 'us-east-1');
    await Promise.all([stopping, starting]);
    expect((await us.status(key)).state).toBe('running');
    expect(us.calls.slice(-3)).toEqual([
      'stop us-east-1/user-1',
      'stop us-east-1/user-1',
      'ensure us-east-1/user-1',
    ]);
  });

  it('defers an idle stop while a transfer holds the environment, and stops when the last hold ends', async () => {
    const { service, us } = await make();
    await service.ensure(owner, 'us-east-1');
    const key = { ownerId: owner.id, region: 'us-east-1' };
    const first = service.hold(key);
    const second = service.hold(key);
    await service.stopWhenIdle(key);
    first.dispose();
    first.dispose(); // twice is once
    expect((await us.status(key)).state).toBe('running');
    second.dispose();
    await vi.waitFor(async () => expect((await us.status(key)).state).toBe('stopped'));
  });

  it('forgets a deferred idle stop when the environment is used again', async () => {
    const { service, us } = await make();
    await service.ensure(owner, 'us-east-1');
    const key = { ownerId: owner.id, region: 'us-east-1' };
    const hold = service.hold(key);
    await service.stopWhenIdle(key);
    await service.ensure(owner, 'us-east-1');
    hold.dispose();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await us.status(key)).state).toBe('running');
    expect(us.calls.filter((call) => call.startsWith('stop'))).toEqual([]);
  });

  it('does not answer from memory while a stop is under way', async () => {
    const { service, us } = await make();
    await service.ensure(owner, 'us-east-1');
    const key = { ownerId: owner.id, region: 'us-east-1' };
    const stopping = service.stop(key);
    const phases: string[] = [];
    await service.ensure(owner, 'us-east-1', (p) => phases.push(p));
    await stopping;
    expect(phases).toEqual(['starting', 'ready']);
    expect((await us.status(key)).state).toBe('running');
  });

  it('re-adopts what the backends list at reconcile', async () => {
    const { service, us } = await make();
    await us.ensure(service.spec(owner, 'us-east-1'));
    expect(service.list()).toEqual([]);
    const found = await service.reconcile();
    expect(found.map((s) => [s.ownerId, s.state])).toEqual([['user-1', 'running']]);
    const phases: string[] = [];
    await service.ensure(owner, 'us-east-1', (p) => phases.push(p));
    expect(phases).toEqual(['ready']);
  });

  it('passes die and OOM events on, and forgets that a dead environment runs', async () => {
    const { service, us } = await make();
    const changes: EnvironmentChange[] = [];
    service.onChange((c) => changes.push(c));
    await service.ensure(owner, 'us-east-1');
    us.emit({ ownerId: owner.id, region: 'us-east-1', kind: 'oom', id: 'c1' });
    us.die({ ownerId: owner.id, region: 'us-east-1' }, 'oom');
    expect(changes).toEqual([
      { ownerId: 'user-1', region: 'us-east-1', kind: 'oom', reason: 'oom' },
      { ownerId: 'user-1', region: 'us-east-1', kind: 'stopped', reason: 'oom' },
    ]);
    const phases: string[] = [];
    await service.ensure(owner, 'us-east-1', (p) => phases.push(p));
    expect(phases).toEqual(['starting', 'ready']);
    service.close();
  });
});
