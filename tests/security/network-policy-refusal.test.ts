/**
 * C07 (the refusal half): when Cove's firewall rules are missing and cannot be put back, no
 * environment starts, the user gets a coded 503 that says an administrator must act, /readyz says
 * degraded, and no container exists. The firewall is a scripted one here: tampering with the
 * host's real rules would disturb every other environment on the machine.
 */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { buildConfig } from '../../server/config.js';
import { SandboxGuard } from '../../server/environments/sandbox-guard.js';
import { MANAGED_LABEL_FILTER } from '../../sandbox/names.js';
import type { EgressPolicy } from '../../sandbox/docker/egress-policy.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const RUN = randomBytes(3).toString('hex');
const region = 'us-east-1';
const owner = { id: `sec-refuse-${RUN}`, username: 'refused' };

/** A firewall that stays broken, as after a flush by something that keeps flushing. */
class BrokenFirewall implements EgressPolicy {
  installs = 0;
  async install(): Promise<void> {
    this.installs++;
  }
  async check(): Promise<string[]> {
    return ['the jump "-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS" is missing from iptables DOCKER-USER'];
  }
}

let t: TestApp;
const firewall = new BrokenFirewall();

beforeAll(async () => {
  const config = buildConfig({ security: { egressPolicy: 'enforce' } });
  t = await createTestApp(
    {
      logLevel: 'info',
      regions: [{ id: region, name: 'US East' }],
      homes: { enabled: false },
      security: { egressPolicy: 'enforce' },
    },
    { sandboxGuard: new SandboxGuard({ config, log: pino({ level: 'silent' }), policy: firewall }) },
  );
});

afterAll(async () => {
  await t?.app.environments
    .driver(region)
    .remove({ ownerId: owner.id, region })
    .catch(() => undefined);
  await t?.close();
});

describe('environments refuse to start without the firewall', () => {
  it('C07 enforce: 503 COVE_ERR_ENVIRONMENT_NETWORK_POLICY, after trying to put the rules back; no container', async () => {
    const installsBefore = firewall.installs;
    const error = await t.app.environments.ensure(owner, region).then(
      () => undefined,
      (e: unknown) => e as { code?: string; statusCode?: number; message?: string },
    );
    expect(error).toMatchObject({ code: 'COVE_ERR_ENVIRONMENT_NETWORK_POLICY', statusCode: 503 });
    expect(error?.message).toMatch(
      /^Cove's network protection for containers is not in place, so no environment is started\. An administrator must fix it: /,
    );
    expect(error?.message).not.toMatch(/iptables|DOCKER-USER|cove-br/); // the details are for the log
    expect(firewall.installs).toBeGreaterThan(installsBefore);

    const containers = await docker.listContainers({
      all: true,
      filters: { label: [MANAGED_LABEL_FILTER, `cove.owner=${owner.id}`] },
    });
    expect(containers).toEqual([]);
  });

  it('C07 enforce: creating a terminal is refused with the same 503 at once, not after a 201', async () => {
    const user = await t.store.users.create({ username: `refused-${RUN}` });
    const session = await t.app.sessions.create(user.id, 'full');
    const response = await t.app.inject({
      method: 'POST',
      url: `/api/environments/${region}/terminals`,
      headers: {
        origin: t.app.config.publicUrl,
        cookie: `cove_session=${session.token}`,
        'content-type': 'application/json',
      },
      payload: '{}',
    });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ code: 'COVE_ERR_ENVIRONMENT_NETWORK_POLICY' });
    expect(response.body).not.toMatch(/iptables|DOCKER-USER|cove-br/);
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [MANAGED_LABEL_FILTER, `cove.owner=${user.id}`] },
    });
    expect(containers).toEqual([]);
  });

  it('C07 /readyz reports the network check failing', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ status: 'degraded', checks: { network: false } });
  });
});
