/**
 * One Docker bridge network per region that every environment of the region joins: no
 * container-to-container traffic (icc off), IPv4 only, and a Linux bridge whose name starts with
 * one prefix, so a single firewall rule (`-i cove-br+`, egress-policy.ts) covers every region.
 */
import { createHash } from 'node:crypto';

import type Docker from 'dockerode';

import { safeSlug } from '../names.js';

/** Every Cove bridge starts with this; interface names are at most 15 characters. */
export const BRIDGE_PREFIX = 'cove-br-';
export const BRIDGE_WILDCARD = `${BRIDGE_PREFIX}+`;
export const LABEL_NETWORK = 'cove.network';

const ICC = 'com.docker.network.bridge.enable_icc';
const BRIDGE_NAME = 'com.docker.network.bridge.name';

/** `cove-<region>`, the Docker network name. */
export function regionNetworkName(region: string): string {
  return `cove-${safeSlug(region, 40)}`;
}

/** `cove-br-<7 hex>`: 15 characters, the kernel's limit for an interface name. */
export function regionBridgeName(region: string): string {
  return `${BRIDGE_PREFIX}${createHash('sha256').update(region).digest('hex').slice(0, 7)}`;
}

export function regionNetworkOptions(region: string): Docker.NetworkCreateOptions {
  return {
    Name: regionNetworkName(region),
    Driver: 'bridge',
    CheckDuplicate: true,
    Internal: false,
    Attachable: false,
    // No IPv6 on the network; the firewall also refuses any IPv6 from Cove bridges.
    EnableIPv6: false,
    Options: { [ICC]: 'false', [BRIDGE_NAME]: regionBridgeName(region) },
    Labels: { [LABEL_NETWORK]: 'true', 'cove.region': region },
  };
}

/**
 * What is wrong with an existing network of that name, in plain words (empty when it is fit).
 * A network someone else made under our name must not silently carry environments.
 */
export function regionNetworkProblems(info: Docker.NetworkInspectInfo, region: string): string[] {
  const name = regionNetworkName(region);
  const problems: string[] = [];
  const options = info.Options ?? {};
  if (info.Driver !== 'bridge') problems.push(`network ${name} uses driver ${info.Driver}, not bridge`);
  if (options[ICC] !== 'false') problems.push(`network ${name} allows traffic between containers (icc)`);
  if (options[BRIDGE_NAME] !== regionBridgeName(region))
    problems.push(
      `network ${name} has bridge ${options[BRIDGE_NAME] ?? '(default)'}, not ${regionBridgeName(region)}`,
    );
  if (info.EnableIPv6) problems.push(`network ${name} has IPv6 enabled`);
  if (info.Internal) problems.push(`network ${name} is internal (no internet)`);
  return problems;
}
