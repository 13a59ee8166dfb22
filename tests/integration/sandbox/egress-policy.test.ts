/**
 * The egress policy and region networks on this host's real iptables (nft backend) and Docker
 * engine. Regions are made up per run, so other Cove processes on the host (whose own rules
 * must survive) are not disturbed; the base rules are the same for everyone.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../../sandbox/environment-image.js';
import { DockerSandboxDriver } from '../../../sandbox/docker/docker-sandbox-driver.js';
import {
  desiredEgressRules,
  IptablesEgressPolicy,
  resolversFrom,
} from '../../../sandbox/docker/egress-policy.js';
import { regionBridgeName, regionNetworkName } from '../../../sandbox/docker/region-network.js';
import type { EnvironmentKey, EnvironmentSpec } from '../../../sandbox/sandbox-driver.js';

const run = promisify(execFile);
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const letters = (n: number) => [...randomBytes(n)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
const regionA = `eu-egress${letters(6)}-1`;
const regionB = `eu-egress${letters(6)}-2`;
const resolvers = resolversFrom(readFileSync('/etc/resolv.conf', 'utf8'));
const driver = new DockerSandboxDriver({ docker });
const keys: EnvironmentKey[] = [];

const chain = async (tool: string, name: string): Promise<string[]> =>
  (await run(tool, ['-w', '-S', name])).stdout.split('\n').filter((line) => line.startsWith('-A '));

const specFor = (key: EnvironmentKey, extra: Partial<EnvironmentSpec> = {}): EnvironmentSpec => ({
  ...key,
  image: 'cove/sandbox:latest',
  limits: { ...DEFAULT_LIMITS, memoryBytes: 256 * 1024 ** 2 },
  network: 'region',
  ...extra,
});

afterAll(async () => {
  await Promise.allSettled(keys.map((key) => driver.remove(key)));
  // This run's regions, listed without exceptions: their rules go, everyone else's stay.
  await new IptablesEgressPolicy({
    regions: [regionA, regionB].map((id) => ({ id, allow: [] })),
    resolvers,
    ipv6: true,
  }).install();
  for (const region of [regionA, regionB]) {
    await docker
      .getNetwork(regionNetworkName(region))
      .remove()
      .catch(() => undefined);
  }
});

describe('IptablesEgressPolicy on the real firewall', () => {
  const input = { regions: [{ id: regionA, allow: ['10.77.0.0/16'] }], resolvers, ipv6: true };

  it('installs exactly the desired rules, jumped to first, and checks clean; again is a no-op', async () => {
    const policy = new IptablesEgressPolicy(input);
    await policy.install();
    expect(await policy.check()).toEqual([]);
    const [ipv4, ipv6] = desiredEgressRules(input);
    const egress = (await chain('iptables', 'COVE-EGRESS')).filter(
      (rule) => !policy.isForeignException(rule),
    );
    expect(egress).toEqual(ipv4!.chains['COVE-EGRESS']);
    expect(await chain('iptables', 'COVE-HOST')).toEqual(ipv4!.chains['COVE-HOST']);
    expect((await chain('iptables', 'DOCKER-USER'))[0]).toBe('-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS');
    expect((await chain('iptables', 'INPUT'))[0]).toBe('-A INPUT -i cove-br-+ -j COVE-HOST');
    expect(await chain('ip6tables', 'COVE-EGRESS')).toEqual(ipv6!.chains['COVE-EGRESS']);
    expect((await chain('ip6tables', 'FORWARD'))[0]).toBe('-A FORWARD -i cove-br-+ -j COVE-EGRESS');

    await policy.install();
    const jumps = (await chain('iptables', 'DOCKER-USER')).filter((rule) => rule.includes('COVE-EGRESS'));
    expect(jumps).toHaveLength(1);
    expect(await policy.check()).toEqual([]);
  });

  it("another Cove's region exceptions survive this one's install, and each checks clean", async () => {
    const mine = new IptablesEgressPolicy(input);
    const other = new IptablesEgressPolicy({
      regions: [{ id: regionB, allow: ['10.78.0.0/16'] }],
      resolvers,
      ipv6: true,
    });
    await mine.install();
    await other.install();
    await mine.install();
    const egress = await chain('iptables', 'COVE-EGRESS');
    expect(egress).toContain(`-A COVE-EGRESS -d 10.78.0.0/16 -i ${regionBridgeName(regionB)} -j RETURN`);
    expect(egress).toContain(`-A COVE-EGRESS -d 10.77.0.0/16 -i ${regionBridgeName(regionA)} -j RETURN`);
    expect(await mine.check()).toEqual([]);
    expect(await other.check()).toEqual([]);
  });
});

describe('region networks and runtimes through the driver', () => {
  it('creates the region network on first use: icc off, Cove bridge name, no IPv6', async () => {
    const key = { ownerId: `egress-${letters(8)}`, region: regionA };
    keys.push(key);
    await docker
      .getNetwork(regionNetworkName(regionA))
      .remove()
      .catch(() => undefined);
    const status = await driver.ensure(specFor(key));
    expect(status.state).toBe('running');
    const net = await docker.getNetwork(regionNetworkName(regionA)).inspect();
    expect(net.Options).toEqual({
      'com.docker.network.bridge.enable_icc': 'false',
      'com.docker.network.bridge.name': regionBridgeName(regionA),
    });
    expect(net.EnableIPv6).toBe(false);
    expect(Object.keys(net.Containers ?? {})).toContain(status.id);
    const v6 = await driver.exec(key, ['cat', '/proc/sys/net/ipv6/conf/all/disable_ipv6']);
    expect(v6.stdout.toString().trim()).toBe('1');
  });

  it('refuses a network of that name with looser settings (icc on)', async () => {
    const key = { ownerId: `egress-${letters(8)}`, region: regionB };
    keys.push(key);
    await docker
      .getNetwork(regionNetworkName(regionB))
      .remove()
      .catch(() => undefined);
    await docker.createNetwork({ Name: regionNetworkName(regionB), Driver: 'bridge' });
    await expect(driver.ensure(specFor(key))).rejects.toMatchObject({
      code: 'COVE_ERR_SANDBOX_NETWORK',
      message: expect.stringMatching(/allows traffic between containers/),
    });
    expect((await driver.status(key)).state).toBe('missing');
  });

  it('a region runtime the engine does not know gives COVE_ERR_SANDBOX_RUNTIME_MISSING', async () => {
    const key = { ownerId: `egress-${letters(8)}`, region: regionA };
    keys.push(key);
    await expect(driver.ensure(specFor(key, { runtime: 'cove-no-such-runtime' }))).rejects.toMatchObject({
      code: 'COVE_ERR_SANDBOX_RUNTIME_MISSING',
      message: expect.stringMatching(/daemon\.json "runtimes"/),
    });
  });
});
