/**
 * The egress firewall of this host for the regions whose engine runs here: iptables run by Cove
 * itself, or by the firewall helper on the host's network when Cove runs in a container
 * (egress-helper.ts). Remote engines' regions are left to their own host.
 */
import { runsOnThisHost, type RegionBackendConfig } from '../backend-config.js';
import { HelperEgressPolicy } from './egress-helper.js';
import { hostEgressInput, IptablesEgressPolicy, normalizeCidr, type EgressPolicy } from './egress-policy.js';

/** A region as the firewall reads it: its backend and its egress exceptions (IPv4 CIDRs). */
export interface EgressRegionConfig extends RegionBackendConfig {
  readonly network?: { readonly allow: readonly string[] };
}

/** The firewall for `regions`; through the helper at `helperSocket` when one is given. */
export function hostEgressPolicy(
  regions: readonly EgressRegionConfig[],
  helperSocket?: string,
): EgressPolicy {
  const local = regions
    .filter((region) => runsOnThisHost(region))
    .map((region) => ({ id: region.id, allow: (region.network?.allow ?? []).map(normalizeCidr) }));
  return helperSocket
    ? new HelperEgressPolicy(helperSocket, local)
    : new IptablesEgressPolicy(hostEgressInput(local));
}
