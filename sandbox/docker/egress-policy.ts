/**
 * The egress policy of environment containers: the public internet is allowed (users need the AWS
 * APIs); the host, the cloud metadata service, other containers, private and reserved ranges are
 * not, unless a region lists exceptions. Docker's per-region networks (region-network.ts) keep
 * containers apart; these firewall rules do the rest.
 *
 * Two chains of Cove's own, rebuilt atomically (iptables-restore --noflush) and jumped to first:
 * - `COVE-EGRESS` from `DOCKER-USER` (traffic routed through the host, IPv4) and from `FORWARD`
 *   (IPv6, where Docker makes no DOCKER-USER without its ip6tables mode);
 * - `COVE-HOST` from `INPUT`: nothing from a container reaches a port on the host, whichever of
 *   its addresses is used (the bridge gateway, eth0, ...). Replies to connections the host opened
 *   still pass. Docker's embedded DNS (127.0.0.11) lives in the container's own namespace and
 *   needs nothing here.
 *
 * `desiredEgressRules` is pure and unit-tested by exact equality; `IptablesEgressPolicy` only
 * installs and compares. Rules are written exactly as `iptables -S` prints them, so a check is a
 * comparison of lines.
 */
import { existsSync, readFileSync } from 'node:fs';
import { BRIDGE_WILDCARD, regionBridgeName } from './region-network.js';
import { ExecIptablesRunner, type IptablesRunner } from './iptables.js';

export type EgressPolicyMode = 'enforce' | 'warn' | 'off';

export const EGRESS_CHAIN = 'COVE-EGRESS';
export const HOST_CHAIN = 'COVE-HOST';

/**
 * Destinations no environment may reach (IPv4), with why, for the docs and the rule review. The
 * documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) are left out on purpose:
 * test rigs such as this project's CI use them to stand in for the public internet.
 */
export const BLOCKED_IPV4: readonly { readonly cidr: string; readonly why: string }[] = [
  { cidr: '0.0.0.0/8', why: '"this network"' },
  { cidr: '10.0.0.0/8', why: 'private (RFC 1918)' },
  { cidr: '100.64.0.0/10', why: 'carrier-grade NAT; some clouds put metadata here (100.100.100.200)' },
  { cidr: '127.0.0.0/8', why: 'loopback' },
  { cidr: '169.254.0.0/16', why: 'link-local: the metadata service 169.254.169.254, ECS 169.254.170.2' },
  { cidr: '172.16.0.0/12', why: 'private (RFC 1918), where Docker puts its networks' },
  { cidr: '192.0.0.0/24', why: 'IETF protocol assignments' },
  { cidr: '192.168.0.0/16', why: 'private (RFC 1918)' },
  { cidr: '198.18.0.0/15', why: 'benchmarking' },
  { cidr: '224.0.0.0/4', why: 'multicast' },
  { cidr: '240.0.0.0/4', why: 'reserved, and the broadcast address' },
];

export interface EgressPolicyInput {
  /** Regions served by this host's engine, each with its exceptions (IPv4 CIDRs). */
  readonly regions: readonly { readonly id: string; readonly allow: readonly string[] }[];
  /**
   * The host's DNS servers that are not loopback (from /etc/resolv.conf). Docker's embedded DNS
   * forwards queries from inside the container's namespace, so a resolver on a private address
   * must stay reachable on port 53, and only there.
   */
  readonly resolvers: readonly string[];
  /** Also guard IPv6 (when the host has IPv6 at all). */
  readonly ipv6: boolean;
}

export interface FamilyRules {
  readonly family: 'ipv4' | 'ipv6';
  /** Chain → its rules as `iptables -S <chain>` prints them (without the `-N` line). */
  readonly chains: Readonly<Record<string, readonly string[]>>;
  /** Rules that must be the first rule of a built-in or Docker chain. */
  readonly jumps: readonly { readonly chain: string; readonly rule: string }[];
}

const ESTABLISHED = '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN';
const REJECT4 = '-j REJECT --reject-with icmp-port-unreachable';
const REJECT6 = '-j REJECT --reject-with icmp6-port-unreachable';

export function desiredEgressRules(input: EgressPolicyInput): FamilyRules[] {
  const egress = (rule: string): string => `-A ${EGRESS_CHAIN} ${rule}`;
  const host = (rule: string): string => `-A ${HOST_CHAIN} ${rule}`;

  const ipv4Egress = [
    egress(ESTABLISHED),
    ...input.resolvers.flatMap((resolver) => {
      const dest = normalizeCidr(resolver.includes('/') ? resolver : `${resolver}/32`);
      return [
        egress(`-d ${dest} -p udp -m udp --dport 53 -j RETURN`),
        egress(`-d ${dest} -p tcp -m tcp --dport 53 -j RETURN`),
      ];
    }),
    ...input.regions.flatMap((region) =>
      region.allow.map((cidr) =>
        egress(`-d ${normalizeCidr(cidr)} -i ${regionBridgeName(region.id)} -j RETURN`),
      ),
    ),
    ...BLOCKED_IPV4.map(({ cidr }) => egress(`-d ${cidr} ${REJECT4}`)),
    // Belt and braces: any address of this host that is not in a range above (a public IP).
    egress(`-m addrtype --dst-type LOCAL ${REJECT4}`),
    egress('-j RETURN'),
  ];
  const rules: FamilyRules[] = [
    {
      family: 'ipv4',
      chains: {
        [EGRESS_CHAIN]: ipv4Egress,
        [HOST_CHAIN]: [host(ESTABLISHED), host(REJECT4)],
      },
      jumps: [
        { chain: 'DOCKER-USER', rule: `-A DOCKER-USER -i ${BRIDGE_WILDCARD} -j ${EGRESS_CHAIN}` },
        { chain: 'INPUT', rule: `-A INPUT -i ${BRIDGE_WILDCARD} -j ${HOST_CHAIN}` },
      ],
    },
  ];
  if (input.ipv6) {
    // Cove's networks carry no IPv6; a link-local address still exists on the container side,
    // so refuse all of it (this also covers the metadata service's fd00:ec2::254).
    rules.push({
      family: 'ipv6',
      chains: {
        [EGRESS_CHAIN]: [egress(ESTABLISHED), egress(REJECT6)],
        [HOST_CHAIN]: [host(ESTABLISHED), host(REJECT6)],
      },
      jumps: [
        { chain: 'FORWARD', rule: `-A FORWARD -i ${BRIDGE_WILDCARD} -j ${EGRESS_CHAIN}` },
        { chain: 'INPUT', rule: `-A INPUT -i ${BRIDGE_WILDCARD} -j ${HOST_CHAIN}` },
      ],
    });
  }
  return rules;
}

/**
 * The iptables-restore input that makes `rules` true in one transaction: declaring a chain with
 * --noflush empties it, stale copies of our jumps are deleted, and each jump goes in first.
 * `foreign` exceptions (another Cove's regions on this host, see `isForeignException`) are kept,
 * just before the first refusal.
 */
export function restoreScript(
  rules: FamilyRules,
  existingJumps: Readonly<Record<string, number>>,
  foreign: readonly string[] = [],
): string {
  const lines = ['*filter'];
  for (const chain of Object.keys(rules.chains)) lines.push(`:${chain} - [0:0]`);
  for (const [chain, chainRules] of Object.entries(rules.chains)) {
    if (chain !== EGRESS_CHAIN || foreign.length === 0) {
      lines.push(...chainRules);
      continue;
    }
    const firstRefusal = chainRules.findIndex((rule) => rule.includes(' -j REJECT'));
    lines.push(...chainRules.slice(0, firstRefusal), ...foreign, ...chainRules.slice(firstRefusal));
  }
  for (const { chain, rule } of rules.jumps) {
    const spec = rule.slice(`-A ${chain} `.length);
    for (let i = 0; i < (existingJumps[rule] ?? 0); i++) lines.push(`-D ${chain} ${spec}`);
    lines.push(`-I ${chain} 1 ${spec}`);
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/**
 * The input for this host's firewall: the regions given, with the name servers and the IPv6
 * presence of the network namespace this process runs in (the host's, for the server on the host
 * and for the compose deployment's helper on the host network).
 */
export function hostEgressInput(regions: EgressPolicyInput['regions']): EgressPolicyInput {
  const resolvConf = existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '';
  return { regions, resolvers: resolversFrom(resolvConf), ipv6: existsSync('/proc/net/if_inet6') };
}

/** Non-loopback IPv4 name servers from resolv.conf text. */
export function resolversFrom(resolvConf: string): string[] {
  const servers: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const match = /^\s*nameserver\s+(\S+)/.exec(line);
    const address = match?.[1];
    if (address && isIpv4(address) && !address.startsWith('127.') && !servers.includes(address))
      servers.push(address);
  }
  return servers;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function isIpv4(text: string): boolean {
  const match = IPV4.exec(text);
  return match !== null && match.slice(1).every((part) => Number(part) <= 255);
}

/** `10.1.2.3/16` → `10.1.0.0/16`, as iptables prints it; throws on anything but IPv4 CIDR. */
export function normalizeCidr(cidr: string): string {
  const [address, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (!address || !isIpv4(address) || !/^\d{1,2}$/.test(bitsText ?? '') || bits > 32) {
    throw new Error(`not an IPv4 CIDR: ${cidr}`);
  }
  const value = address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const network = (value & mask) >>> 0;
  return `${[24, 16, 8, 0].map((shift) => (network >>> shift) & 255).join('.')}/${bits}`;
}

export interface EgressPolicy {
  /** Makes the rules true (idempotent; a no-op when they already are). */
  install(): Promise<void>;
  /** What is missing or different, in plain words; empty when everything is in place. */
  check(): Promise<string[]>;
}

const EXCEPTION = /^-A COVE-EGRESS -d \S+ -i (cove-br-[0-9a-f]{7}) -j RETURN$/;

export class IptablesEgressPolicy implements EgressPolicy {
  readonly rules: readonly FamilyRules[];
  readonly #ownBridges: ReadonlySet<string>;

  constructor(
    input: EgressPolicyInput,
    private readonly runner: IptablesRunner = new ExecIptablesRunner(),
  ) {
    this.rules = desiredEgressRules(input);
    this.#ownBridges = new Set(input.regions.map((region) => regionBridgeName(region.id)));
  }

  /**
   * An exception for a bridge that is not one of this config's regions: another Cove on the same
   * host (a second instance, a test run) with regions of its own. It only concerns that bridge's
   * containers, so it is left alone rather than fought over; anything else unknown is reported.
   */
  isForeignException(rule: string): boolean {
    const bridge = EXCEPTION.exec(rule)?.[1];
    return bridge !== undefined && !this.#ownBridges.has(bridge);
  }

  async install(): Promise<void> {
    for (const family of this.rules) {
      const table = await this.table(family);
      if (this.problemsIn(family, table).length === 0) continue;
      const existing: Record<string, number> = {};
      for (const { chain, rule } of family.jumps) {
        existing[rule] = (table.get(chain) ?? []).filter((line) => line === rule).length;
      }
      const foreign =
        family.family === 'ipv4'
          ? (table.get(EGRESS_CHAIN) ?? []).filter((rule) => this.isForeignException(rule))
          : [];
      const binary = family.family === 'ipv4' ? 'iptables-restore' : 'ip6tables-restore';
      const result = await this.runner.run(binary, ['--noflush'], restoreScript(family, existing, foreign));
      if (result.code !== 0) {
        throw new Error(`${binary} failed: ${(result.stderr || result.stdout).trim()}`);
      }
    }
  }

  async check(): Promise<string[]> {
    const problems: string[] = [];
    for (const family of this.rules) problems.push(...this.problemsIn(family, await this.table(family)));
    return problems;
  }

  private problemsIn(family: FamilyRules, table: ReadonlyMap<string, readonly string[]>): string[] {
    const problems: string[] = [];
    const tool = family.family === 'ipv4' ? 'iptables' : 'ip6tables';
    for (const [chain, wanted] of Object.entries(family.chains)) {
      const listed = table.get(chain);
      if (listed === undefined) {
        problems.push(`the ${tool} chain ${chain} is missing`);
        continue;
      }
      const actual = listed.filter((rule) => !this.isForeignException(rule));
      const missing = wanted.filter((rule) => !actual.includes(rule));
      const extra = actual.filter((rule) => !wanted.includes(rule));
      if (missing.length > 0) problems.push(`${tool} chain ${chain} lacks: ${missing.join('; ')}`);
      if (extra.length > 0)
        problems.push(`${tool} chain ${chain} has rules Cove did not put there: ${extra.join('; ')}`);
      if (missing.length === 0 && extra.length === 0 && actual.join('\n') !== wanted.join('\n'))
        problems.push(`${tool} chain ${chain} has its rules in the wrong order`);
    }
    for (const { chain, rule } of family.jumps) {
      const actual = table.get(chain);
      if (actual === undefined) {
        problems.push(
          chain === 'DOCKER-USER'
            ? `Docker's ${tool} chain DOCKER-USER is missing (is dockerd running, with its iptables rules on?)`
            : `the ${tool} chain ${chain} cannot be read`,
        );
      } else if (actual[0] !== rule) {
        problems.push(
          actual.includes(rule)
            ? `the jump "${rule}" is not the first rule of ${tool} ${chain}`
            : `the jump "${rule}" is missing from ${tool} ${chain}`,
        );
      }
    }
    return problems;
  }

  /**
   * Every chain of the filter table with its `-A` lines, from one `iptables -S` (one call per
   * family keeps the check before each environment start cheap). A chain that does not exist is
   * absent from the map.
   */
  private async table(family: FamilyRules): Promise<Map<string, string[]>> {
    const tool = family.family === 'ipv4' ? 'iptables' : 'ip6tables';
    const result = await this.runner.run(tool, ['-S']);
    if (result.code !== 0) throw new Error(`${tool} -S failed: ${(result.stderr || result.stdout).trim()}`);
    const chains = new Map<string, string[]>();
    for (const line of result.stdout.split('\n').map((l) => l.trim())) {
      const [flag, chain] = line.split(' ');
      if (!chain) continue;
      if (flag === '-P' || flag === '-N') chains.set(chain, chains.get(chain) ?? []);
      else if (flag === '-A') (chains.get(chain) ?? chains.set(chain, []).get(chain)!).push(line);
    }
    return chains;
  }
}
