// The compose deployment's firewall path: the server (in its own network namespace) installs and
// checks the host's rules through the helper's unix socket, and refuses to start environments
// when the helper reports them missing or does not answer. A real socket and HTTP; a fake iptables.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HelperEgressPolicy,
  serveEgressHelper,
  type HelperRegions,
} from '../../../../sandbox/docker/egress-helper.js';
import { IptablesEgressPolicy } from '../../../../sandbox/docker/egress-policy.js';
import { regionBridgeName } from '../../../../sandbox/docker/region-network.js';
import { buildConfig } from '../../../../server/config.js';
import { CoveError } from '../../../../server/errors.js';
import { SandboxGuard, sandboxGuardFor } from '../../../../server/environments/sandbox-guard.js';
import { FakeIptables } from '../../../helpers/fake-iptables.js';

const log = pino({ level: 'silent' });
const regions: HelperRegions = [
  { id: 'us-east-1', allow: [] },
  { id: 'eu-west-1', allow: ['10.20.0.0/16'] },
];

let dir: string;
let socket: string;
let fake: FakeIptables;
let asked: HelperRegions[];
let server: Server | undefined;

/** The helper as compose runs it, on the host's (here: a fake) firewall. */
async function startHelper(): Promise<void> {
  server = await serveEgressHelper({
    socketPath: socket,
    policyFor: (wanted) => {
      asked.push(wanted);
      return new IptablesEgressPolicy({ regions: wanted, resolvers: ['10.255.255.53'], ipv6: true }, fake);
    },
  });
}

function raw(method: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cove-egress-helper-'));
  socket = join(dir, 'egress.sock');
  fake = new FakeIptables();
  asked = [];
});

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('the firewall helper of the compose deployment', () => {
  it("reads and installs the host's rules for the server's regions, exceptions and the host's resolvers included", async () => {
    await startHelper();
    const policy = new HelperEgressPolicy(socket, regions);
    expect(await policy.check()).toEqual([
      'the iptables chain COVE-EGRESS is missing',
      'the iptables chain COVE-HOST is missing',
      'the jump "-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS" is missing from iptables DOCKER-USER',
      'the jump "-A INPUT -i cove-br-+ -j COVE-HOST" is missing from iptables INPUT',
      'the ip6tables chain COVE-EGRESS is missing',
      'the ip6tables chain COVE-HOST is missing',
      'the jump "-A FORWARD -i cove-br-+ -j COVE-EGRESS" is missing from ip6tables FORWARD',
      'the jump "-A INPUT -i cove-br-+ -j COVE-HOST" is missing from ip6tables INPUT',
    ]);
    await policy.install();
    expect(await policy.check()).toEqual([]);
    const egress = fake.tables.ipv4.get('COVE-EGRESS');
    expect(egress).toContain(`-A COVE-EGRESS -d 10.20.0.0/16 -i ${regionBridgeName('eu-west-1')} -j RETURN`);
    expect(egress).toContain('-A COVE-EGRESS -d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN');
    expect(egress).toContain(
      '-A COVE-EGRESS -d 169.254.0.0/16 -j REJECT --reject-with icmp-port-unreachable',
    );
    expect(fake.tables.ipv4.get('DOCKER-USER')?.[0]).toBe('-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS');
    expect(asked.every((wanted) => JSON.stringify(wanted) === JSON.stringify(regions))).toBe(true);
    // Only root (the server's container runs as root) may talk to it.
    expect(statSync(socket).mode & 0o777).toBe(0o600);
  });

  it("compose-up's install (no regions) and the server's install (its regions) keep each other's rules", async () => {
    await startHelper();
    const oneShot = new IptablesEgressPolicy({ regions: [], resolvers: ['10.255.255.53'], ipv6: true }, fake);
    await oneShot.install();
    await new HelperEgressPolicy(socket, regions).install();
    // The next compose-up run finds everything in place and restores nothing.
    const restores = fake.restores.length;
    expect(await oneShot.check()).toEqual([]);
    await oneShot.install();
    expect(fake.restores).toHaveLength(restores);
    expect(await new HelperEgressPolicy(socket, regions).check()).toEqual([]);
  });

  it('enforce: rules the helper cannot put back refuse the environment with COVE_ERR_ENVIRONMENT_NETWORK_POLICY', async () => {
    const failing = new FakeIptables();
    failing.run = async (binary, args, stdin) =>
      binary.endsWith('-restore')
        ? { code: 4, stdout: '', stderr: 'iptables-restore: Permission denied (you must be root)' }
        : FakeIptables.prototype.run.call(failing, binary, args, stdin);
    fake = failing;
    await startHelper();
    const policy = new HelperEgressPolicy(socket, regions);
    await expect(policy.install()).rejects.toThrow(
      "Cove's firewall helper answered 500 to install: iptables-restore failed: iptables-restore: Permission denied (you must be root)",
    );
    const guard = new SandboxGuard({
      config: buildConfig({ security: { egressPolicy: 'enforce' } }),
      log,
      policy,
    });
    await guard.init();
    const refusal = await guard.assertCanStart('us-east-1').catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(CoveError);
    expect((refusal as CoveError).code).toBe('COVE_ERR_ENVIRONMENT_NETWORK_POLICY');
    expect((refusal as CoveError).statusCode).toBe(503);
    expect(await guard.networkReady()).toBe(false);
  });

  it('a helper that does not answer is a missing firewall: enforce refuses, warn (explicit) starts', async () => {
    const policy = new HelperEgressPolicy(socket, regions);
    await expect(policy.check()).rejects.toThrow(
      `Cove's firewall helper does not answer on ${socket} (ENOENT); is the egress service of docker-compose.yml running?`,
    );
    const enforce = new SandboxGuard({
      config: buildConfig({ security: { egressPolicy: 'enforce' } }),
      log,
      policy,
    });
    await enforce.init();
    await expect(enforce.assertCanStart('us-east-1')).rejects.toMatchObject({
      code: 'COVE_ERR_ENVIRONMENT_NETWORK_POLICY',
    });
    expect(await enforce.networkReady()).toBe(false);
    const warn = new SandboxGuard({
      config: buildConfig({ security: { egressPolicy: 'warn' } }),
      log,
      policy,
    });
    await expect(warn.assertCanStart('us-east-1')).resolves.toBeUndefined();
  });

  it('the server built from config (COVE_SECURITY_EGRESS_HELPER_SOCKET) asks the helper, with its regions', async () => {
    await startHelper();
    const config = buildConfig({
      regions: [
        { id: 'us-east-1', name: 'US East' },
        { id: 'eu-west-1', name: 'Ireland', network: { allow: ['10.20.30.40/16'] } },
        { id: 'ap-south-1', name: 'Remote', docker: { host: 'engine.example', port: 2376 } },
      ],
      security: { egressPolicy: 'enforce', egressHelperSocket: socket },
    });
    const guard = sandboxGuardFor(config, log);
    await guard.init();
    expect(await guard.networkReady()).toBe(true);
    await expect(guard.assertCanStart('eu-west-1')).resolves.toBeUndefined();
    // Normalized exceptions; a remote engine's region is that host's business, not this one's.
    expect(asked[0]).toEqual(regions);
  });

  it('refuses requests that are not the two calls with valid regions, without touching the firewall', async () => {
    await startHelper();
    const bad: [string, string, string, number, RegExp][] = [
      ['GET', '/v1/check', '', 404, /POST \/v1\/check or \/v1\/install/],
      ['POST', '/v1/flush', '{"regions":[]}', 404, /POST/],
      ['POST', '/v1/check', 'not json', 400, /not JSON/],
      ['POST', '/v1/check', '{"regions":"all"}', 400, /regions must be a list/],
      ['POST', '/v1/install', '{"regions":[{"id":"x; rm -rf /","allow":[]}]}', 400, /not a region id/],
      [
        'POST',
        '/v1/install',
        '{"regions":[{"id":"us-east-1","allow":["0.0.0.0/0 -j ACCEPT"]}]}',
        400,
        /not an IPv4 CIDR/,
      ],
      [
        'POST',
        '/v1/install',
        JSON.stringify({ regions: [], pad: 'x'.repeat(70_000) }),
        413,
        /over 65536 bytes/,
      ],
    ];
    for (const [method, path, body, status, error] of bad) {
      const answer = await raw(method, path, body);
      expect(answer.status, `${method} ${path} ${body.slice(0, 40)}`).toBe(status);
      expect((JSON.parse(answer.body) as { error: string }).error).toMatch(error);
    }
    expect(asked).toEqual([]);
    expect(fake.restores).toEqual([]);
  });
});
