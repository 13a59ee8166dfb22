/**
 * SECURITY-TESTS F08 in the environment service: the driver's COVE_ERR_SANDBOX_HOST_FULL becomes
 * the user's 507 COVE_ERR_ENVIRONMENT_HOST_FULL; for a while after it new starts in that region
 * are refused at once (and /readyz's capacity check is false), running environments are not
 * affected, and the first start that works again clears it. A fake driver and a fake clock.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../../../server/config.js';
import { EnvironmentService } from '../../../../server/environments/environment-service.js';
import { CoveError } from '../../../../server/errors.js';
import { SandboxError } from '../../../../sandbox/sandbox-error.js';
import { FakeSandboxDriver } from './fake-sandbox-driver.js';

const config = buildConfig({
  regions: [
    { id: 'us-east-1', name: 'US East' },
    { id: 'eu-west-1', name: 'Europe' },
  ],
});
const alice = { id: 'alice-id', username: 'alice' };
const bob = { id: 'bob-id', username: 'bob' };

async function make() {
  let now = 1_000_000;
  const drivers = new Map<string, FakeSandboxDriver>();
  const service = new EnvironmentService({
    config,
    log: pino({ level: 'silent' }),
    driverFactory: (region) => {
      const driver = new FakeSandboxDriver();
      drivers.set(region.id, driver);
      return driver;
    },
    hostFullHoldMs: 10_000,
    now: () => now,
  });
  await service.init();
  return {
    service,
    us: drivers.get('us-east-1') as FakeSandboxDriver,
    advance: (ms: number) => (now += ms),
  };
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

describe('EnvironmentService when the engine is out of disk space', () => {
  it('F08 a full engine is a coded 507 for the user, refused at once for a while, and clears when a start works', async () => {
    const { service, us, advance } = await make();
    await service.ensure(alice, 'us-east-1');
    us.failEnsure = new SandboxError(
      'COVE_ERR_SANDBOX_HOST_FULL',
      'Docker create failed: mkdir /var/lib/docker/overlay2/x-init: no space left on device',
    );

    const refused = await failure(service.ensure(bob, 'us-east-1'));
    expect(refused).toBeInstanceOf(CoveError);
    expect((refused as CoveError).statusCode).toBe(507);
    expect((refused as CoveError).toJSON()).toEqual({
      code: 'COVE_ERR_ENVIRONMENT_HOST_FULL',
      message:
        'The server that runs environments is out of disk space, so no new environment can start. Open terminals keep working; try again later and tell your administrator.',
    });
    // What the user reads names no path and no engine internals; the log keeps the cause.
    expect((refused as CoveError).message).not.toMatch(/docker|overlay2|\//);
    expect((refused as CoveError).cause).toBeInstanceOf(SandboxError);

    // Said at once now (before any 201), only for new starts in that region.
    const calls = us.calls.length;
    const early = await failure(service.assertCanStart({ ownerId: bob.id, region: 'us-east-1' }));
    expect((early as CoveError).code).toBe('COVE_ERR_ENVIRONMENT_HOST_FULL');
    expect(us.calls.length).toBe(calls);
    await expect(service.assertCanStart({ ownerId: alice.id, region: 'us-east-1' })).resolves.toBeUndefined();
    await expect(service.assertCanStart({ ownerId: bob.id, region: 'eu-west-1' })).resolves.toBeUndefined();
    expect(service.hostFull('us-east-1')).toBe(true);
    expect(service.hasCapacity()).toBe(false);

    // After the hold the engine is asked again; space freed meanwhile: the start works and clears it.
    advance(10_001);
    expect(service.hasCapacity()).toBe(true);
    await expect(service.assertCanStart({ ownerId: bob.id, region: 'us-east-1' })).resolves.toBeUndefined();
    us.failEnsure = undefined;
    await expect(service.ensure(bob, 'us-east-1')).resolves.toMatchObject({ state: 'running' });
    expect(service.hostFull('us-east-1')).toBe(false);
  });

  it('F08 other driver failures pass through unchanged and set nothing', async () => {
    const { service, us } = await make();
    const backend = new SandboxError('COVE_ERR_SANDBOX_BACKEND', 'Docker create failed: boom');
    us.failEnsure = backend;
    expect(await failure(service.ensure(bob, 'us-east-1'))).toBe(backend);
    expect(service.hasCapacity()).toBe(true);
  });
});
