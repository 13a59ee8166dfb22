/**
 * SECURITY-TESTS C06, C07, I05: what a real environment can reach, through the real server's
 * start path (the guard installs Cove's firewall, the driver makes the region network).
 *
 * Test hosts live in a network namespace made here, joined to the host by a veth pair: it holds
 * the metadata address 169.254.169.254 and a private 10.213.x.2, each serving HTTP on port 80.
 * Nothing goes to a real outside or private address. Region us-east-1 has no exceptions; a region
 * made for this run lists both test addresses as exceptions, which is the positive control: the same
 * probe from there gets through, so a refusal in us-east-1 is the firewall's doing, not a broken
 * rig. The public internet is checked by reading the installed rules only.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { containerName } from '../../sandbox/names.js';
import { IptablesEgressPolicy, resolversFrom } from '../../sandbox/docker/egress-policy.js';
import { regionNetworkName } from '../../sandbox/docker/region-network.js';
import type { EnvironmentKey } from '../../sandbox/sandbox-driver.js';

const run = promisify(execFile);
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const RUN = randomBytes(3).toString('hex');
const NS = `cove-t-${RUN}`;
const VETH_HOST = `cvt${RUN}h`;
const VETH_NS = `cvt${RUN}n`;
const OCTET = randomInt(10, 250);
const PRIVATE_HOST = `10.213.${OCTET}.2`;
const PRIVATE_GW = `10.213.${OCTET}.1`;
const METADATA = '169.254.169.254';
const locked = 'us-east-1';
// A region of this run alone: other Cove processes on the host leave its exceptions be.
const excepted = `eu-cove${[...randomBytes(6)].map((b) => String.fromCharCode(97 + (b % 26))).join('')}-1`;

let t: TestApp;
let listener: ChildProcess | undefined;
let hostServer: Server;
let hostPort = 0;
const keys: EnvironmentKey[] = [];

const owner = (label: string) => ({ id: `sec-net-${RUN}-${label}`, username: `net-${label}` });

/** TCP connects from inside the environment: `open`, `refused`, `timeout` or `error:<why>` each. */
const PROBE = `
import json, socket, sys
out = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(':', 1)
    host = host.strip('[]')
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
    s.settimeout(3)
    try:
        s.connect((host, int(port))); out[target] = 'open'
    except ConnectionRefusedError: out[target] = 'refused'
    except socket.timeout: out[target] = 'timeout'
    except OSError as e: out[target] = 'error:' + str(e.strerror or e)
    finally: s.close()
print(json.dumps(out))
`;

async function sh(cmd: string, args: string[]): Promise<void> {
  await run(cmd, args);
}

async function start(label: string, region: string): Promise<EnvironmentKey> {
  const who = owner(label);
  const key = { ownerId: who.id, region };
  keys.push(key);
  await t.app.environments.ensure(who, region);
  return key;
}

async function exec(key: EnvironmentKey, script: string, args: string[] = []): Promise<string> {
  const result = await t.app.environments
    .driver(key.region)
    .exec(key, ['bash', '-c', script, 'probe', ...args], { timeoutMs: 30_000 });
  return result.stdout.toString('utf8') + result.stderr.toString('utf8');
}

async function tcp(key: EnvironmentKey, targets: string[]): Promise<Record<string, string>> {
  const result = await t.app.environments
    .driver(key.region)
    .exec(key, ['python3', '-c', PROBE, ...targets], { timeoutMs: 60_000 });
  return JSON.parse(result.stdout.toString('utf8')) as Record<string, string>;
}

/** `curl` from inside: `<http code> <curl exit code>`; 000 and a non-zero exit mean no answer. */
const curl = (key: EnvironmentKey, ...args: string[]): Promise<string> =>
  exec(key, 'curl -s -m 4 -o /dev/null -w "%{http_code}" "$@"; echo " $?"', args).then((s) => s.trim());

async function networkOf(key: EnvironmentKey): Promise<{ ip: string; gateway: string }> {
  const info = await docker.getContainer(containerName(key)).inspect();
  const net = info.NetworkSettings.Networks[regionNetworkName(key.region)];
  return { ip: net?.IPAddress ?? '', gateway: net?.Gateway ?? '' };
}

beforeAll(async () => {
  await sh('ip', ['netns', 'add', NS]);
  await sh('ip', ['link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS]);
  await sh('ip', ['link', 'set', VETH_NS, 'netns', NS]);
  await sh('ip', ['addr', 'add', `${PRIVATE_GW}/24`, 'dev', VETH_HOST]);
  await sh('ip', ['link', 'set', VETH_HOST, 'up']);
  const inNs = (...args: string[]) => sh('ip', ['netns', 'exec', NS, 'ip', ...args]);
  await inNs('addr', 'add', `${PRIVATE_HOST}/24`, 'dev', VETH_NS);
  await inNs('addr', 'add', `${METADATA}/32`, 'dev', VETH_NS);
  await inNs('link', 'set', VETH_NS, 'up');
  await inNs('link', 'set', 'lo', 'up');
  await inNs('route', 'add', 'default', 'via', PRIVATE_GW);
  await sh('ip', ['route', 'add', `${METADATA}/32`, 'dev', VETH_HOST]);
  listener = spawn(
    'ip',
    ['netns', 'exec', NS, '/usr/bin/python3', '-m', 'http.server', '--bind', '0.0.0.0', '80'],
    {
      stdio: 'ignore',
    },
  );
  // The host namespace reaches both test hosts: the rig works before any container tries.
  for (let i = 0; ; i++) {
    const ok = await Promise.all(
      [PRIVATE_HOST, METADATA].map((ip) =>
        fetch(`http://${ip}/`, { signal: AbortSignal.timeout(1000) }).then(
          (r) => r.status === 200,
          () => false,
        ),
      ),
    );
    if (ok.every(Boolean)) break;
    if (i > 50) throw new Error('the test hosts in the network namespace did not answer');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  // Stands in for every service on the host (Cove's own port, a database): listens everywhere.
  hostServer = createServer((socket) => socket.end('hello\n'));
  await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
  hostPort = (hostServer.address() as { port: number }).port;

  t = await createTestApp({
    logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    regions: [
      { id: locked, name: 'Locked' },
      { id: excepted, name: 'Excepted', network: { allow: [`${PRIVATE_HOST}/32`, `${METADATA}/32`] } },
    ],
    homes: { enabled: false },
    sandbox: { memoryBytes: 256 * 1024 ** 2 },
    security: { egressPolicy: 'enforce' },
  });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(keys.map((key) => t?.app.environments.driver(key.region).remove(key)));
  await t?.close();
  // Take this run's exceptions out again (its region listed without any).
  await new IptablesEgressPolicy({
    regions: [{ id: excepted, allow: [] }],
    resolvers: resolversFrom(readFileSync('/etc/resolv.conf', 'utf8')),
    ipv6: true,
  })
    .install()
    .catch(() => undefined);
  await docker
    .getNetwork(regionNetworkName(excepted))
    .remove()
    .catch(() => undefined);
  listener?.kill('SIGKILL');
  await new Promise<void>((resolve) => (hostServer ? hostServer.close(() => resolve()) : resolve()));
  await run('ip', ['route', 'del', `${METADATA}/32`, 'dev', VETH_HOST]).catch(() => undefined);
  await run('ip', ['link', 'del', VETH_HOST]).catch(() => undefined);
  await run('ip', ['netns', 'del', NS]).catch(() => undefined);
});

describe('network isolation of environments', () => {
  it('C07 metadata service, IMDSv2, fd00:ec2::254 and RFC1918 are blocked; a region exception lets them through', async () => {
    const a = await start('c07a', locked);
    const b = await start('c07b', excepted);
    const credsPath = `http://${METADATA}/latest/meta-data/iam/security-credentials/`;

    // Blocked: no HTTP status, curl fails (7: refused by the firewall's REJECT).
    expect(await curl(a, credsPath)).toMatch(/^000 [1-9]\d*$/);
    expect(
      await curl(
        a,
        '-X',
        'PUT',
        '-H',
        'X-aws-ec2-metadata-token-ttl-seconds: 21600',
        `http://${METADATA}/latest/api/token`,
      ),
    ).toMatch(/^000 [1-9]\d*$/);
    expect(await curl(a, '-g', 'http://[fd00:ec2::254]/latest/meta-data/')).toMatch(/^000 [1-9]\d*$/);
    expect(await curl(a, `http://${PRIVATE_HOST}/`)).toMatch(/^000 [1-9]\d*$/);

    // Positive control: the same probes from the region that lists the test hosts get answers.
    expect(await curl(b, credsPath)).toMatch(/^(200|404) 0$/);
    expect(await curl(b, `http://${PRIVATE_HOST}/`)).toBe('200 0');

    // And the host namespace still reaches them (nothing but the container's path is blocked).
    expect((await fetch(`http://${METADATA}/`)).status).toBe(200);
  });

  it('C07 the public internet is allowed and the rest refused, read from the installed rules (no packets out)', async () => {
    const { stdout: user } = await run('iptables', ['-w', '-S', 'DOCKER-USER']);
    expect(user.split('\n').find((l) => l.startsWith('-A DOCKER-USER'))).toBe(
      '-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS',
    );
    const { stdout } = await run('iptables', ['-w', '-S', 'COVE-EGRESS']);
    const rules = stdout.split('\n').filter((l) => l.startsWith('-A COVE-EGRESS'));
    // First rule matching a plain destination decides, as the kernel walks the chain.
    const verdict = (ip: string): string => {
      for (const rule of rules) {
        if (/-m (conntrack|addrtype)|-p |-i /.test(rule)) continue;
        const cidr = /-d (\S+)/.exec(rule)?.[1];
        if (cidr && !inCidr(ip, cidr)) continue;
        return /-j (\S+)/.exec(rule)?.[1] ?? '?';
      }
      return 'RETURN';
    };
    for (const publicIp of ['1.1.1.1', '52.94.236.248', '3.5.0.1']) expect(verdict(publicIp)).toBe('RETURN');
    for (const blocked of [
      METADATA,
      '169.254.170.2',
      '10.0.0.1',
      '172.17.0.1',
      '192.168.1.1',
      '100.100.100.200',
      '127.0.0.1',
      '224.0.0.1',
    ]) {
      expect(verdict(blocked), blocked).toBe('REJECT');
    }
    const { stdout: v6 } = await run('ip6tables', ['-w', '-S', 'COVE-EGRESS']);
    expect(v6.split('\n').filter((l) => l.startsWith('-A'))).toEqual([
      '-A COVE-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-A COVE-EGRESS -j REJECT --reject-with icmp6-port-unreachable',
    ]);
    // The network carries no IPv6 at all.
    const net = await docker.getNetwork(regionNetworkName(locked)).inspect();
    expect(net.EnableIPv6).toBe(false);
    expect(net.Options?.['com.docker.network.bridge.enable_icc']).toBe('false');
  });

  it('C06 no Docker socket; the host is closed on every address and port (gateway, eth0, our server, 22, 2375, 2376, 5432)', async () => {
    const a = await start('c06', locked);
    expect(await exec(a, 'ls -l /var/run/docker.sock /run/docker.sock 2>&1; echo rc=$?')).toMatch(
      /No such file or directory[\s\S]*rc=2/,
    );
    expect(await curl(a, '--unix-socket', '/var/run/docker.sock', 'http://x/version')).toMatch(
      /^000 [1-9]\d*$/,
    );

    // The stand-in service answers on the host itself (via loopback)...
    const hello = await new Promise<string>((resolve, reject) => {
      const client = connect(hostPort, '127.0.0.1');
      client.once('data', (data) => {
        resolve(data.toString());
        client.end();
      });
      client.once('error', reject);
    });
    expect(hello).toBe('hello\n');

    // ...and not from the environment, whichever host address it tries.
    const { gateway } = await networkOf(a);
    const hostAddresses = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i && i.family === 'IPv4' && !i.internal && !i.address.startsWith('10.213.'))
      .map((i) => i!.address);
    const targets = [
      ...[hostPort, 22, 2375, 2376, 5432].map((port) => `${gateway}:${port}`),
      ...hostAddresses.map((ip) => `${ip}:${hostPort}`),
    ];
    const results = await tcp(a, targets);
    for (const target of targets) expect(results[target], target).toMatch(/^(refused|timeout)$/);
  });

  it("I05 another user's container is unreachable (icc off), raw sockets fail (no ARP spoofing), ping of the gateway fails", async () => {
    const a = await start('i05a', locked);
    const b = await start('i05b', locked);
    // B serves HTTP as its own user on an unprivileged port.
    await exec(b, 'nohup python3 -m http.server --bind 0.0.0.0 8000 >/dev/null 2>&1 & sleep 1; echo started');
    const bNet = await networkOf(b);
    const aNet = await networkOf(a);
    expect(bNet.ip).not.toBe('');
    // Positive control: B reaches its own server through its own address.
    expect(await curl(b, `http://${bNet.ip}:8000/`)).toBe('200 0');
    // A cannot, nor the rest of the container subnet.
    const results = await tcp(a, [`${bNet.ip}:8000`, `${bNet.gateway}:8000`]);
    expect(results[`${bNet.ip}:8000`]).toMatch(/^(refused|timeout)$/);
    expect(results[`${bNet.gateway}:8000`], 'the gateway').toMatch(/^(refused|timeout)$/);
    expect(await curl(a, `http://${bNet.ip}:8000/`)).toMatch(/^000 [1-9]\d*$/);

    const raw = await exec(
      a,
      `python3 - <<'EOF'
import socket
for name, args in [('raw-icmp', (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
                   ('packet-arp', (socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)))]:
    try:
        socket.socket(*args); print(name, 'allowed')
    except PermissionError: print(name, 'EPERM')
EOF`,
    );
    expect(raw.trim().split('\n')).toEqual(['raw-icmp EPERM', 'packet-arp EPERM']);
    expect(await exec(a, `ping -c1 -W2 ${aNet.gateway} >/dev/null 2>&1; echo rc=$?`)).toMatch(/rc=[1-9]/);
  });
});

function inCidr(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText ?? 32);
  const toInt = (a: string) => a.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (toInt(ip) & mask) >>> 0 === (toInt(base ?? '') & mask) >>> 0;
}
