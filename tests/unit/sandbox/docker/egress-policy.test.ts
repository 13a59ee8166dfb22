// The firewall review: the exact rules Cove installs for environment containers. A change here
// opens or closes a path out of the sandbox; read the diff before updating the expectation.
import { describe, expect, it } from 'vitest';

import {
  desiredEgressRules,
  IptablesEgressPolicy,
  normalizeCidr,
  resolversFrom,
  restoreScript,
} from '../../../../sandbox/docker/egress-policy.js';
import { withoutWarnings } from '../../../../sandbox/docker/iptables.js';
import { FakeIptables } from '../../../helpers/fake-iptables.js';
import {
  regionBridgeName,
  regionNetworkName,
  regionNetworkOptions,
  regionNetworkProblems,
} from '../../../../sandbox/docker/region-network.js';

const R = '-j REJECT --reject-with icmp-port-unreachable';

describe('desiredEgressRules', () => {
  it('blocks the host, metadata, private and reserved ranges and allows the rest (IPv4 + IPv6)', () => {
    const bridge = regionBridgeName('eu-west-1');
    expect(bridge).toBe('cove-br-d763c26');
    expect(
      desiredEgressRules({
        regions: [
          { id: 'us-east-1', allow: [] },
          { id: 'eu-west-1', allow: ['10.20.30.40/16', '192.168.7.7/32'] },
        ],
        resolvers: ['10.255.255.53'],
        ipv6: true,
      }),
    ).toEqual([
      {
        family: 'ipv4',
        chains: {
          'COVE-EGRESS': [
            '-A COVE-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
            '-A COVE-EGRESS -d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN',
            '-A COVE-EGRESS -d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN',
            `-A COVE-EGRESS -d 10.20.0.0/16 -i ${bridge} -j RETURN`,
            `-A COVE-EGRESS -d 192.168.7.7/32 -i ${bridge} -j RETURN`,
            `-A COVE-EGRESS -d 0.0.0.0/8 ${R}`,
            `-A COVE-EGRESS -d 10.0.0.0/8 ${R}`,
            `-A COVE-EGRESS -d 100.64.0.0/10 ${R}`,
            `-A COVE-EGRESS -d 127.0.0.0/8 ${R}`,
            `-A COVE-EGRESS -d 169.254.0.0/16 ${R}`,
            `-A COVE-EGRESS -d 172.16.0.0/12 ${R}`,
            `-A COVE-EGRESS -d 192.0.0.0/24 ${R}`,
            `-A COVE-EGRESS -d 192.168.0.0/16 ${R}`,
            `-A COVE-EGRESS -d 198.18.0.0/15 ${R}`,
            `-A COVE-EGRESS -d 224.0.0.0/4 ${R}`,
            `-A COVE-EGRESS -d 240.0.0.0/4 ${R}`,
            `-A COVE-EGRESS -m addrtype --dst-type LOCAL ${R}`,
            '-A COVE-EGRESS -j RETURN',
          ],
          'COVE-HOST': [
            '-A COVE-HOST -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
            `-A COVE-HOST ${R}`,
          ],
        },
        jumps: [
          { chain: 'DOCKER-USER', rule: '-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS' },
          { chain: 'INPUT', rule: '-A INPUT -i cove-br-+ -j COVE-HOST' },
        ],
      },
      {
        family: 'ipv6',
        chains: {
          'COVE-EGRESS': [
            '-A COVE-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
            '-A COVE-EGRESS -j REJECT --reject-with icmp6-port-unreachable',
          ],
          'COVE-HOST': [
            '-A COVE-HOST -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
            '-A COVE-HOST -j REJECT --reject-with icmp6-port-unreachable',
          ],
        },
        jumps: [
          { chain: 'FORWARD', rule: '-A FORWARD -i cove-br-+ -j COVE-EGRESS' },
          { chain: 'INPUT', rule: '-A INPUT -i cove-br-+ -j COVE-HOST' },
        ],
      },
    ]);
  });

  it('leaves IPv6 alone on a host without it', () => {
    expect(desiredEgressRules({ regions: [], resolvers: [], ipv6: false }).map((f) => f.family)).toEqual([
      'ipv4',
    ]);
  });

  it('refuses exceptions that are not IPv4 CIDRs', () => {
    for (const bad of ['fd00::/8', '10.0.0.0', '10.0.0.0/33', '300.1.1.1/8', 'example.com/32']) {
      expect(() =>
        desiredEgressRules({ regions: [{ id: 'x', allow: [bad] }], resolvers: [], ipv6: false }),
      ).toThrow(/IPv4 CIDR/);
    }
  });
});

describe('helpers', () => {
  it('normalizes CIDRs the way iptables prints them', () => {
    expect(normalizeCidr('10.1.2.3/16')).toBe('10.1.0.0/16');
    expect(normalizeCidr('203.0.113.9/32')).toBe('203.0.113.9/32');
    expect(normalizeCidr('1.2.3.4/0')).toBe('0.0.0.0/0');
  });

  it('reads non-loopback IPv4 resolvers from resolv.conf', () => {
    const text =
      '# generated\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nnameserver fd00::1\n' +
      'search example.com\n  nameserver 192.168.1.1 \nnameserver 10.255.255.53\n';
    expect(resolversFrom(text)).toEqual(['10.255.255.53', '192.168.1.1']);
  });

  it('drops the legacy-table warnings iptables-nft prints', () => {
    expect(
      withoutWarnings(
        '# Warning: iptables-legacy tables present, use iptables-legacy to see them\n-N X\n-A X -j RETURN',
      ),
    ).toBe('-N X\n-A X -j RETURN');
  });

  it('writes one atomic restore script that replaces stale jumps', () => {
    const [ipv4] = desiredEgressRules({ regions: [], resolvers: [], ipv6: false });
    const script = restoreScript(ipv4!, { '-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS': 2 });
    const lines = script.split('\n');
    expect(lines.slice(0, 3)).toEqual(['*filter', ':COVE-EGRESS - [0:0]', ':COVE-HOST - [0:0]']);
    expect(lines.slice(-6)).toEqual([
      '-D DOCKER-USER -i cove-br-+ -j COVE-EGRESS',
      '-D DOCKER-USER -i cove-br-+ -j COVE-EGRESS',
      '-I DOCKER-USER 1 -i cove-br-+ -j COVE-EGRESS',
      '-I INPUT 1 -i cove-br-+ -j COVE-HOST',
      'COMMIT',
      '',
    ]);
    expect(lines).toContain('-A COVE-EGRESS -d 169.254.0.0/16 -j REJECT --reject-with icmp-port-unreachable');
  });
});

describe('IptablesEgressPolicy', () => {
  const input = { regions: [{ id: 'us-east-1', allow: [] }], resolvers: [], ipv6: true };

  it('says in plain words what is missing before install, and nothing after', async () => {
    const fake = new FakeIptables();
    const policy = new IptablesEgressPolicy(input, fake);
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
    expect(fake.tables.ipv4.get('DOCKER-USER')).toEqual([
      '-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS',
      '-A DOCKER-USER -j RETURN',
    ]);
  });

  it('is idempotent: a second install changes nothing and runs no restore', async () => {
    const fake = new FakeIptables();
    const policy = new IptablesEgressPolicy(input, fake);
    await policy.install();
    const restores = fake.restores.length;
    await policy.install();
    expect(fake.restores).toHaveLength(restores);
    expect(fake.tables.ipv4.get('DOCKER-USER')?.filter((r) => r.includes('COVE'))).toHaveLength(1);
  });

  it('notices tampering: an extra rule, a removed drop, a jump pushed down', async () => {
    const fake = new FakeIptables();
    const policy = new IptablesEgressPolicy(input, fake);
    await policy.install();
    const egress = fake.tables.ipv4.get('COVE-EGRESS')!;
    egress.splice(egress.indexOf(`-A COVE-EGRESS -d 169.254.0.0/16 ${R}`), 1);
    egress.unshift('-A COVE-EGRESS -j ACCEPT');
    fake.tables.ipv4.get('DOCKER-USER')!.unshift('-A DOCKER-USER -j ACCEPT');
    expect(await policy.check()).toEqual([
      `iptables chain COVE-EGRESS lacks: -A COVE-EGRESS -d 169.254.0.0/16 ${R}`,
      'iptables chain COVE-EGRESS has rules Cove did not put there: -A COVE-EGRESS -j ACCEPT',
      'the jump "-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS" is not the first rule of iptables DOCKER-USER',
    ]);
    await policy.install();
    expect(await policy.check()).toEqual([]);
    expect(fake.tables.ipv4.get('DOCKER-USER')?.[0]).toBe('-A DOCKER-USER -i cove-br-+ -j COVE-EGRESS');
  });

  it("reports Docker's chain missing when dockerd never made it", async () => {
    const fake = new FakeIptables();
    fake.tables.ipv4.delete('DOCKER-USER');
    const problems = await new IptablesEgressPolicy({ ...input, ipv6: false }, fake).check();
    expect(problems).toContain(
      "Docker's iptables chain DOCKER-USER is missing (is dockerd running, with its iptables rules on?)",
    );
  });
});

describe('region networks', () => {
  it('names networks and bridges from the region, bridges within 15 characters', () => {
    expect(regionNetworkName('us-east-1')).toBe('cove-us-east-1');
    for (const region of ['us-east-1', 'ap-southeast-2', 'x'.repeat(60)]) {
      expect(regionBridgeName(region)).toMatch(/^cove-br-[0-9a-f]{7}$/);
    }
    expect(regionBridgeName('us-east-1')).not.toBe(regionBridgeName('us-east-2'));
  });

  it('creates an icc-off, IPv4-only bridge with the Cove prefix', () => {
    expect(regionNetworkOptions('eu-west-1')).toEqual({
      Name: 'cove-eu-west-1',
      Driver: 'bridge',
      CheckDuplicate: true,
      Internal: false,
      Attachable: false,
      EnableIPv6: false,
      Options: {
        'com.docker.network.bridge.enable_icc': 'false',
        'com.docker.network.bridge.name': 'cove-br-d763c26',
      },
      Labels: { 'cove.network': 'true', 'cove.region': 'eu-west-1' },
    });
  });

  it('refuses a network of that name made some other way', () => {
    const fit = {
      Driver: 'bridge',
      EnableIPv6: false,
      Internal: false,
      Options: regionNetworkOptions('eu-west-1').Options,
    } as unknown as Parameters<typeof regionNetworkProblems>[0];
    expect(regionNetworkProblems(fit, 'eu-west-1')).toEqual([]);
    expect(
      regionNetworkProblems({ ...fit, EnableIPv6: true, Options: {} } as typeof fit, 'eu-west-1'),
    ).toEqual([
      'network cove-eu-west-1 allows traffic between containers (icc)',
      'network cove-eu-west-1 has bridge (default), not cove-br-d763c26',
      'network cove-eu-west-1 has IPv6 enabled',
    ]);
  });
});

describe('another Cove on the same host', () => {
  it("keeps and tolerates exceptions for bridges that are not this config's regions", async () => {
    const fake = new FakeIptables();
    const other = new IptablesEgressPolicy(
      { regions: [{ id: 'eu-west-1', allow: ['10.9.0.0/16'] }], resolvers: [], ipv6: false },
      fake,
    );
    await other.install();
    const mine = new IptablesEgressPolicy(
      { regions: [{ id: 'us-east-1', allow: [] }], resolvers: [], ipv6: false },
      fake,
    );
    const foreign = `-A COVE-EGRESS -d 10.9.0.0/16 -i ${regionBridgeName('eu-west-1')} -j RETURN`;
    expect(mine.isForeignException(foreign)).toBe(true);
    expect(other.isForeignException(foreign)).toBe(false);
    expect(await mine.check()).toEqual([]);
    // An exception for one of my own bridges that my config does not list is tampering.
    fake.tables.ipv4
      .get('COVE-EGRESS')!
      .splice(1, 0, `-A COVE-EGRESS -d 10.8.0.0/16 -i ${regionBridgeName('us-east-1')} -j RETURN`);
    expect(await mine.check()).toEqual([
      `iptables chain COVE-EGRESS has rules Cove did not put there: -A COVE-EGRESS -d 10.8.0.0/16 -i ${regionBridgeName('us-east-1')} -j RETURN`,
    ]);
    await mine.install();
    const chain = fake.tables.ipv4.get('COVE-EGRESS')!;
    expect(chain).toContain(foreign);
    expect(chain.indexOf(foreign)).toBeLessThan(chain.findIndex((rule) => rule.includes('REJECT')));
    expect(await mine.check()).toEqual([]);
    expect(await other.check()).toEqual([]);
  });
});
