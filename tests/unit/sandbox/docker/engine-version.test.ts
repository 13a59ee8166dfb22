// The version gate's comparisons, by table: upstream versions, distribution suffixes, Debian
// backports, and what this machine's engine (Debian 12 docker.io) reports.
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';

import {
  compareVersions,
  debianAtLeast,
  ENGINE_ADVISORIES,
  engineVersionsFrom,
  evaluateEngineVersions,
  parseVersion,
  type EngineVersions,
} from '../../../../sandbox/docker/engine-version.js';

const cmp = (a: string, b: string): number => Math.sign(compareVersions(parseVersion(a)!, parseVersion(b)!));

describe('parseVersion / compareVersions', () => {
  it.each([
    ['1.1.12', '1.1.12', 0],
    ['1.1.11', '1.1.12', -1],
    ['1.1.13', '1.1.12', 1],
    ['1.1.5+ds1', '1.1.12', -1],
    ['1.6.20~ds1', '1.6.38', -1],
    ['20.10.24+dfsg1', '25.0.2', -1],
    ['v1.0.0-rc6', '1.0.0-rc7', -1],
    ['1.0.0-rc7', '1.0.0-rc.7', 0],
    ['1.0.0-rc10', '1.0.0-rc7', 1],
    ['1.0.0', '1.0.0-rc95', 1],
    ['1.4.0-rc.3', '1.4.0', -1],
    ['1.4.0-rc.2', '1.4.0-rc.3', -1],
    ['2.0', '2.0.0', 0],
    ['27.3.1', '25.0.2', 1],
  ])('%s vs %s → %i', (a, b, expected) => {
    expect(cmp(a, b)).toBe(expected);
  });

  it('refuses what is not a version', () => {
    for (const text of ['', 'abc', '5d6db84', '1', 'latest']) expect(parseVersion(text)).toBeUndefined();
  });
});

describe('debianAtLeast', () => {
  it.each([
    ['1.1.5+ds1-1+deb12u1', '1.1.5+ds1-1+deb12u1', true],
    ['1.1.5+ds1-1+deb12u3', '1.1.5+ds1-1+deb12u1', true],
    ['1.1.5+ds1-1', '1.1.5+ds1-1+deb12u1', false],
    ['1.1.5+ds1-1+deb11u1', '1.1.5+ds1-1+deb12u1', false],
    ['1.1.4+ds1-1+deb12u9', '1.1.5+ds1-1+deb12u1', false],
    ['1.6.20~ds1-1+deb12u3', '1.6.20~ds1-1+deb12u2', true],
    ['1.6.20~ds1-1+deb12u1', '1.6.20~ds1-1+deb12u2', false],
  ])('%s ≥ %s: %s', (have, fixed, expected) => {
    expect(debianAtLeast(have, fixed)).toBe(expected);
  });
});

const ids = (versions: EngineVersions, accept: string[] = []): string[] =>
  evaluateEngineVersions(versions, accept).flatMap((f) => f.ids);

describe('evaluateEngineVersions', () => {
  const current: EngineVersions = {
    engine: { reported: '27.3.1' },
    containerd: { reported: '1.7.27' },
    runc: { reported: '1.2.8' },
  };

  it('finds nothing for current upstream releases', () => {
    expect(evaluateEngineVersions(current)).toEqual([]);
    expect(ids({ ...current, runc: { reported: '1.4.0' } })).toEqual([]);
    expect(ids({ ...current, containerd: { reported: '2.1.1' } })).toEqual([]);
  });

  it.each([
    ['runc 1.1.11 (Leaky Vessels)', { runc: { reported: '1.1.11' } }, ['CVE-2024-21626', 'CVE-2025-31133']],
    ['runc 1.1.12: only the 2025 /proc races', { runc: { reported: '1.1.12' } }, ['CVE-2025-31133']],
    ['runc 1.2.7', { runc: { reported: '1.2.7' } }, ['CVE-2025-31133']],
    ['runc 1.3.3', { runc: { reported: '1.3.3' } }, []],
    [
      'runc 1.0.0-rc6 (CVE-2019-5736)',
      { runc: { reported: '1.0.0-rc6' } },
      ['CVE-2019-5736', 'CVE-2024-21626', 'CVE-2025-31133'],
    ],
    ['containerd 1.6.37', { containerd: { reported: '1.6.37' } }, ['CVE-2024-40635']],
    ['containerd 1.7.27', { containerd: { reported: '1.7.27' } }, []],
    ['containerd 2.0.3', { containerd: { reported: '2.0.3' } }, ['CVE-2024-40635']],
    ['engine 24.0.9', { engine: { reported: '24.0.9' } }, []],
    ['engine 25.0.1', { engine: { reported: '25.0.1' } }, ['CVE-2024-24557']],
    ['engine 23.0.6', { engine: { reported: '23.0.6' } }, ['CVE-2024-24557']],
  ] as [string, Partial<EngineVersions>, string[]][])('%s', (_name, override, expected) => {
    expect(
      ids({ ...current, ...override }).filter((id) => id !== 'CVE-2025-52565' && id !== 'CVE-2025-52881'),
    ).toEqual(expected);
  });

  it('treats a component the engine does not report as a finding', () => {
    const { runc: _runc, ...withoutRunc } = current;
    const findings = evaluateEngineVersions(withoutRunc);
    expect(findings.map((f) => f.component)).toEqual(['runc', 'runc', 'runc']);
    expect(findings[0]?.message).toMatch(/not report/);
  });

  it('accepts versions an operator vouches for, by component and exact version', () => {
    const old: EngineVersions = { ...current, runc: { reported: '1.1.11' } };
    expect(ids(old, ['runc 1.1.11'])).toEqual([]);
    expect(ids(old, ['containerd 1.1.11']).length).toBeGreaterThan(0);
    expect(ids(old, ['runc 1.1.1']).length).toBeGreaterThan(0);
  });

  it("reads this machine's Debian 12 engine: backports count, the rest is reported", () => {
    // `GET /version` of docker.io 20.10.24+dfsg1-1+deb12u1 as seen here.
    const report = {
      Version: '20.10.24+dfsg1',
      Components: [
        { Name: 'Engine', Version: '20.10.24+dfsg1', Details: { GitCommit: '5d6db84' } },
        { Name: 'containerd', Version: '1.6.20~ds1', Details: { GitCommit: '1.6.20~ds1-1+deb12u3' } },
        { Name: 'runc', Version: '1.1.5+ds1', Details: { GitCommit: '1.1.5+ds1-1+deb12u1' } },
        { Name: 'docker-init', Version: '0.19.0', Details: { GitCommit: '' } },
      ],
    } as unknown as Docker.DockerVersion;
    const versions = engineVersionsFrom(report);
    expect(versions).toEqual({
      engine: { reported: '20.10.24+dfsg1' },
      containerd: { reported: '1.6.20~ds1', packageVersion: '1.6.20~ds1-1+deb12u3' },
      runc: { reported: '1.1.5+ds1', packageVersion: '1.1.5+ds1-1+deb12u1' },
    });
    const findings = evaluateEngineVersions(versions);
    // CVE-2024-21626 (runc) and CVE-2024-40635 (containerd) are backported by Debian.
    expect(findings.map((f) => [f.component, f.ids[0]])).toEqual([
      ['runc', 'CVE-2025-31133'],
      ['engine', 'CVE-2024-24557'],
    ]);
    expect(findings[0]?.message).toBe(
      'runc 1.1.5+ds1 is older than 1.2.8 / 1.3.3 / 1.4.0-rc.3 (CVE-2025-31133, CVE-2025-52565, CVE-2025-52881: a crafted image can make runc write arbitrary /proc files (needs a hostile image))',
    );
    // Without the Debian package version the same upstream runc would also miss Leaky Vessels.
    expect(ids({ ...versions, runc: { reported: '1.1.5+ds1' } })).toContain('CVE-2024-21626');
  });

  it('keeps every advisory sorted by release line and citing a CVE', () => {
    for (const advisory of ENGINE_ADVISORIES) {
      expect(advisory.ids.every((id) => /^CVE-\d{4}-\d+$/.test(id))).toBe(true);
      const parsed = advisory.fixedIn.map((v) => parseVersion(v)!);
      for (let i = 1; i < parsed.length; i++)
        expect(compareVersions(parsed[i - 1]!, parsed[i]!)).toBeLessThan(0);
    }
  });
});
