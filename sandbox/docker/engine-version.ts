/**
 * The version gate: compares what the Docker engine reports (`GET /version`: the engine itself
 * plus `Components` for containerd and runc) with the first releases that fixed known container
 * escapes. Pure: `evaluateEngineVersions` takes the report and returns findings; the caller decides
 * whether a finding warns or refuses.
 *
 * Distributions patch without bumping the upstream version (Debian's runc `1.1.5+ds1-1+deb12u1`
 * carries the CVE-2024-21626 fix on top of 1.1.5). So each advisory also lists distribution
 * package versions known to carry the fix, read from that package's changelog; anything else with
 * an old upstream version is reported, and an operator who has checked a build can accept it by
 * its exact reported version (`acceptVersions`).
 */
import type Docker from 'dockerode';
import type { BackendVersionCheck } from '../sandbox-driver.js';

export type EngineComponent = 'engine' | 'containerd' | 'runc';

export interface EngineAdvisory {
  readonly ids: readonly string[];
  readonly component: EngineComponent;
  /** First fixed release of each release line (major.minor), ascending. */
  readonly fixedIn: readonly string[];
  /** Distribution package versions (full, as the engine reports them) that backport the fix. */
  readonly backportedIn: readonly string[];
  readonly summary: string;
}

/**
 * Known escapes and isolation breaks. Sources:
 * - CVE-2019-5736 (runc overwrites itself through /proc/self/exe): runc "through 1.0-rc6, as used
 *   in Docker before 18.09.2" (MITRE); fixed from 1.0.0-rc7.
 * - CVE-2024-21626 "Leaky Vessels" (leaked fd gives a cwd in the host's filesystem): fixed in runc
 *   1.1.12 (GHSA-xr7r-f8xq-vfvv, runc release v1.1.12); Debian bookworm backport
 *   1.1.5+ds1-1+deb12u1 (its changelog: "CVE-2024-21626: several container breakouts due to
 *   internally leaked fds").
 * - CVE-2025-31133, CVE-2025-52565, CVE-2025-52881 (masked-path and /dev/console races that let a
 *   crafted image write arbitrary /proc files): fixed in runc 1.2.8, 1.3.3 and 1.4.0-rc.3 (runc
 *   release notes v1.2.8); "affected all known runc versions".
 * - CVE-2024-40635 (a UID:GID beyond 2^31 overflows to root): fixed in containerd 1.6.38, 1.7.27,
 *   2.0.4 (GHSA-265r-hfxg-fhmg); Debian bookworm backport 1.6.20~ds1-1+deb12u2.
 * - CVE-2024-24557 (classic builder cache poisoning, the engine side of the Leaky Vessels
 *   advisories, with runc 1.1.12 bundled): fixed in Docker Engine 24.0.9 and 25.0.2 (moby
 *   release v25.0.2). Only image builds are exposed; Cove users cannot build on the engine.
 */
export const ENGINE_ADVISORIES: readonly EngineAdvisory[] = [
  {
    ids: ['CVE-2019-5736'],
    component: 'runc',
    fixedIn: ['1.0.0-rc7'],
    backportedIn: [],
    summary: 'a container can overwrite the host runc binary',
  },
  {
    ids: ['CVE-2024-21626'],
    component: 'runc',
    fixedIn: ['1.1.12'],
    backportedIn: ['1.1.5+ds1-1+deb12u1'],
    summary: 'leaked file descriptor gives a container a working directory on the host',
  },
  {
    ids: ['CVE-2025-31133', 'CVE-2025-52565', 'CVE-2025-52881'],
    component: 'runc',
    fixedIn: ['1.2.8', '1.3.3', '1.4.0-rc.3'],
    backportedIn: [],
    summary: 'a crafted image can make runc write arbitrary /proc files (needs a hostile image)',
  },
  {
    ids: ['CVE-2024-40635'],
    component: 'containerd',
    fixedIn: ['1.6.38', '1.7.27', '2.0.4'],
    backportedIn: ['1.6.20~ds1-1+deb12u2'],
    summary: 'a large UID:GID overflows and the container runs as root',
  },
  {
    ids: ['CVE-2024-24557'],
    component: 'engine',
    fixedIn: ['24.0.9', '25.0.2'],
    backportedIn: [],
    summary: 'image build cache poisoning (only image builds are exposed)',
  },
];

/** What one engine runs, as read from `/version`. */
export interface EngineVersions {
  /** Upstream versions (`20.10.24`), or undefined when the engine did not say. */
  readonly engine?: ReportedVersion;
  readonly containerd?: ReportedVersion;
  readonly runc?: ReportedVersion;
}

export interface ReportedVersion {
  /** As reported, e.g. `1.1.5+ds1`. */
  readonly reported: string;
  /** Distribution package version when the engine reports one (`GitCommit` on Debian). */
  readonly packageVersion?: string;
}

export interface EngineFinding {
  readonly component: EngineComponent;
  readonly reported: string;
  readonly ids: readonly string[];
  readonly summary: string;
  /** Plain words for the log and /readyz, e.g. `runc 1.1.5 is older than 1.1.12 (CVE-2024-21626)`. */
  readonly message: string;
}

/** Reads the three versions out of the Engine API's `/version` answer. */
export function engineVersionsFrom(report: Docker.DockerVersion): EngineVersions {
  const components = (report as { Components?: { Name?: string; Version?: string; Details?: unknown }[] })
    .Components;
  const find = (name: string): ReportedVersion | undefined => {
    const entry = components?.find((c) => c.Name?.toLowerCase() === name);
    if (!entry?.Version) return undefined;
    const commit = (entry.Details as { GitCommit?: unknown } | undefined)?.GitCommit;
    // Debian puts its package version in GitCommit; upstream builds put a hex commit there.
    const packageVersion =
      typeof commit === 'string' && /^\d+\.\d+/.test(commit) && !/^[0-9a-f]{7,40}$/.test(commit)
        ? commit
        : undefined;
    return { reported: entry.Version, ...(packageVersion ? { packageVersion } : {}) };
  };
  const engine = find('engine') ?? (report.Version ? { reported: report.Version } : undefined);
  const containerd = find('containerd');
  const runc = find('runc');
  return {
    ...(engine ? { engine } : {}),
    ...(containerd ? { containerd } : {}),
    ...(runc ? { runc } : {}),
  };
}

/**
 * Every advisory the reported versions are not known to be fixed for. A component the engine does
 * not report is a finding too: unknown is not safe. `acceptVersions` holds exact reported or
 * package versions an operator vouches for (`runc 1.1.5+ds1-1+deb12u9`).
 */
export function evaluateEngineVersions(
  versions: EngineVersions,
  acceptVersions: readonly string[] = [],
  advisories: readonly EngineAdvisory[] = ENGINE_ADVISORIES,
): EngineFinding[] {
  const findings: EngineFinding[] = [];
  const accepted = new Set(acceptVersions.map((v) => v.trim()));
  for (const advisory of advisories) {
    const version = versions[advisory.component];
    const label = `${advisory.component} ${version?.reported ?? '(not reported)'}`;
    if (version && isAccepted(advisory.component, version, accepted)) continue;
    if (version && isFixed(version, advisory)) continue;
    const fixes = advisory.fixedIn.join(' / ');
    findings.push({
      component: advisory.component,
      reported: version?.reported ?? '',
      ids: advisory.ids,
      summary: advisory.summary,
      message: version
        ? `${label} is older than ${fixes} (${advisory.ids.join(', ')}: ${advisory.summary})`
        : `${label}: cannot check for ${advisory.ids.join(', ')}; the engine did not report its version`,
    });
  }
  return findings;
}

function isAccepted(component: EngineComponent, version: ReportedVersion, accepted: Set<string>): boolean {
  return [version.reported, version.packageVersion]
    .filter((v): v is string => v !== undefined)
    .some((v) => accepted.has(`${component} ${v}`));
}

function isFixed(version: ReportedVersion, advisory: EngineAdvisory): boolean {
  if (
    version.packageVersion &&
    advisory.backportedIn.some((b) => debianAtLeast(version.packageVersion!, b))
  ) {
    return true;
  }
  const upstream = parseVersion(version.reported);
  if (!upstream) return false;
  const fixes = advisory.fixedIn.map(parseVersion).filter((v): v is ParsedVersion => v !== undefined);
  const sameLine = fixes.find((f) => f.major === upstream.major && f.minor === upstream.minor);
  if (sameLine) return compareVersions(upstream, sameLine) >= 0;
  // A line newer than every fixed line was branched after the fix; an older one never got it.
  const newest = fixes[fixes.length - 1];
  return newest !== undefined && compareLine(upstream, newest) > 0;
}

export interface ParsedVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** Pre-release parts (`rc.3`, `rc7` → ['rc', 7]); empty for a release. */
  readonly pre: readonly (string | number)[];
}

/**
 * Parses the upstream part of `1.1.5+ds1`, `1.6.20~ds1`, `v1.0.0-rc7`, `20.10.24+dfsg1`,
 * `1.0.0-rc.3`: distribution suffixes after `+` or `~` are dropped.
 */
export function parseVersion(text: string): ParsedVersion | undefined {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.]+))?(?:[+~].*)?$/.exec(text.trim());
  if (!match) return undefined;
  const pre = (match[4] ?? '')
    .split(/\.|(?<=[a-z])(?=\d)/i)
    .filter(Boolean)
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part.toLowerCase()));
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3] ?? 0), pre };
}

/** Semver order: a pre-release sorts before its release. */
export function compareVersions(a: ParsedVersion, b: ParsedVersion): number {
  const line = compareLine(a, b);
  if (line !== 0) return line;
  if (a.patch !== b.patch) return a.patch - b.patch;
  if (a.pre.length === 0 || b.pre.length === 0) return b.pre.length - a.pre.length;
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

function compareLine(a: ParsedVersion, b: ParsedVersion): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}

/**
 * True when Debian package version `have` is the backport `fixed` or a later update of the same
 * upstream version (`1.1.5+ds1-1+deb12u3` ≥ `1.1.5+ds1-1+deb12u1`). A different upstream version
 * is left to the upstream comparison.
 */
export function debianAtLeast(have: string, fixed: string): boolean {
  const split = (v: string): { base: string; update: number } | undefined => {
    const match = /^(.*\+deb\d+)u(\d+)$/.exec(v.trim());
    return match ? { base: match[1] as string, update: Number(match[2]) } : undefined;
  };
  if (have.trim() === fixed.trim()) return true;
  const h = split(have);
  const f = split(fixed);
  return h !== undefined && f !== undefined && h.base === f.base && h.update >= f.update;
}

/** The version gate's answer for one engine's `/version` report (SandboxDriver.checkVersions). */
export function checkEngineVersions(
  report: Docker.DockerVersion,
  acceptVersions: readonly string[] = [],
): BackendVersionCheck {
  const versions = engineVersionsFrom(report);
  return { versions: { ...versions }, findings: evaluateEngineVersions(versions, acceptVersions) };
}
