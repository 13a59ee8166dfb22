/**
 * What must hold before Cove starts any environment: the egress firewall is in place
 * (sandbox/docker/egress-policy.ts) and each region's backend is not older than the releases
 * fixing known escapes (SandboxDriver.checkVersions; sandbox/docker/engine-version.ts). Installed
 * and read at start; re-checked before each environment start (at most every few seconds),
 * because someone may flush the firewall while Cove runs (a firewall reload, a Docker restart
 * does not, an administrator might).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import {
  hostEgressPolicy,
  runsOnThisHost,
  type BackendFinding,
  type BackendVersionCheck,
  type EgressPolicy,
} from '../../sandbox/index.js';

/** How long one firewall check is trusted before the next environment start looks again. */
const recheckMs = 5_000;

export interface SandboxGuardOptions {
  readonly config: Pick<Config, 'regions' | 'security'>;
  readonly log: FastifyBaseLogger;
  /** The firewall; none when `security.egressPolicy` is off. */
  readonly policy?: EgressPolicy;
  readonly now?: () => number;
}

/**
 * Checks one region's backend software against known escapes, accepting the operator's
 * `accept` list (SandboxDriver.checkVersions); undefined when the backend has nothing to check.
 */
export type EngineVersionProbe = (
  region: string,
  accept: readonly string[],
) => Promise<BackendVersionCheck> | undefined;

export class SandboxGuard {
  private problems: string[] = [];
  private checkedAt = -Infinity;
  private readonly outdated = new Map<string, readonly BackendFinding[]>();
  private readonly now: () => number;

  constructor(private readonly options: SandboxGuardOptions) {
    this.now = options.now ?? Date.now;
  }

  get mode(): Config['security']['egressPolicy'] {
    return this.options.policy ? this.options.config.security.egressPolicy : 'off';
  }

  /** Installs the firewall and reads every region's engine versions; never throws. */
  async init(probe?: EngineVersionProbe): Promise<void> {
    const { log } = this.options;
    for (const region of this.options.config.regions) {
      if (!runsOnThisHost(region) && this.options.policy) {
        log.warn(
          { region: region.id },
          "this region's engine is remote: its host's firewall is not managed by Cove; apply docs/hardening.md there",
        );
      }
    }
    if (this.options.policy) {
      try {
        await this.options.policy.install();
      } catch (error) {
        log.error({ err: error }, 'could not install the environment firewall rules');
      }
      await this.refresh(true);
      if (this.problems.length === 0) log.info('environment firewall rules are in place');
    } else {
      log.warn(
        'security.egressPolicy is off: environments can reach the host, the metadata service and private networks',
      );
    }
    if (probe) await this.checkVersions(probe);
  }

  private async checkVersions(probe: EngineVersionProbe): Promise<void> {
    const { config, log } = this.options;
    for (const region of config.regions) {
      let check: BackendVersionCheck | undefined;
      try {
        check = await probe(region.id, config.security.versionGateAccept);
      } catch (error) {
        log.warn({ err: error, region: region.id }, 'could not read the engine version; will not gate on it');
        continue;
      }
      if (!check) continue;
      const { versions, findings } = check;
      if (findings.length === 0) {
        log.info({ region: region.id, versions }, 'engine versions pass the version gate');
        continue;
      }
      this.outdated.set(region.id, findings);
      const refuse = config.security.versionGate === 'refuse';
      for (const finding of findings) {
        log[refuse ? 'error' : 'warn'](
          { region: region.id, component: finding.component, cves: finding.ids },
          `version gate: ${finding.message}${refuse ? '; no environment will start in this region' : ''}`,
        );
      }
    }
  }

  /**
   * Throws the coded error a user sees when an environment must not start. In `warn` mode a
   * missing rule is logged and the start goes on.
   */
  async assertCanStart(region: string): Promise<void> {
    if (this.options.config.security.versionGate === 'refuse' && this.outdated.has(region)) {
      throw errors.environmentEngineOutdated();
    }
    if (this.mode === 'off') return;
    let problems = await this.refresh(false);
    if (problems.length > 0 && this.options.policy) {
      // Put back what vanished (a flushed firewall), then look again before refusing.
      this.options.log.warn({ problems }, 'environment firewall rules were missing; reinstalling them');
      try {
        await this.options.policy.install();
      } catch (error) {
        this.options.log.error({ err: error }, 'could not reinstall the environment firewall rules');
      }
      problems = await this.refresh(true);
    }
    if (problems.length === 0) return;
    if (this.mode === 'enforce') throw errors.environmentNetworkPolicy();
    this.options.log.warn(
      { problems, region },
      'starting an environment without its firewall rules (warn mode)',
    );
  }

  /** For /readyz: true when the firewall is in place (or deliberately off). */
  async networkReady(): Promise<boolean> {
    if (this.mode === 'off') return true;
    return (await this.refresh(false)).length === 0;
  }

  /** Findings of the version gate per region, for the admin's eyes. */
  engineFindings(): ReadonlyMap<string, readonly BackendFinding[]> {
    return this.outdated;
  }

  private async refresh(force: boolean): Promise<string[]> {
    const policy = this.options.policy;
    if (!policy) return [];
    if (!force && this.now() - this.checkedAt < recheckMs) return this.problems;
    try {
      this.problems = await policy.check();
    } catch (error) {
      this.problems = [`the firewall could not be read: ${(error as Error).message}`];
    }
    this.checkedAt = this.now();
    if (this.problems.length > 0)
      this.options.log.error(
        { problems: this.problems, mode: this.mode },
        'environment firewall rules are not in place',
      );
    return this.problems;
  }
}

/**
 * The guard for a config: Cove's iptables rules for every region on this host's engine, with the
 * host's DNS servers as the only private destinations reachable (port 53). With
 * `security.egressHelperSocket` (a server in a container: docker-compose) the rules are installed
 * and checked by the helper on the host's network instead (sandbox/docker/egress-helper.ts).
 */
export function sandboxGuardFor(
  config: Pick<Config, 'regions' | 'security'>,
  log: FastifyBaseLogger,
): SandboxGuard {
  if (config.security.egressPolicy === 'off') return new SandboxGuard({ config, log });
  const policy = hostEgressPolicy(config.regions, config.security.egressHelperSocket || undefined);
  return new SandboxGuard({ config, log, policy });
}
