// The security review of an environment container: the whole create options, compared exactly.
// A change here loosens or tightens isolation; read the diff before updating the expectation.
import { describe, expect, it } from 'vitest';

import { buildContainerSpec, specHash } from '../../../../sandbox/docker/container-spec.js';
import { DEFAULT_LIMITS } from '../../../../sandbox/environment-image.js';
import { containerLabels, containerName, keyFromLabels, safeSlug } from '../../../../sandbox/names.js';
import type { EnvironmentSpec } from '../../../../sandbox/sandbox-driver.js';
import { SandboxError } from '../../../../sandbox/sandbox-error.js';
import { hostDirectory } from '../../../../sandbox/host-directory.js';

const OWNER = '6f1c2a9e-1b2c-4d5e-8f90-0123456789ab';

const representative: EnvironmentSpec = {
  ownerId: OWNER,
  region: 'eu-west-1',
  image: 'cove/sandbox:latest',
  limits: DEFAULT_LIMITS,
  home: hostDirectory(`/var/lib/cove/homes/${OWNER}/eu-west-1`),
  credentials: hostDirectory(`/var/lib/cove/run/creds/${OWNER}-eu-west-1`),
  env: {
    COVE_USER: 'alice',
    COVE_REGION: 'eu-west-1',
    COVE_IDENTITY: 'no AWS credentials',
    AWS_REGION: 'eu-west-1',
  },
  // The region's own icc-off network behind Cove's egress firewall (region-network.ts).
  network: 'region',
};

describe('buildContainerSpec', () => {
  it('builds the hardened container for a representative environment', () => {
    expect(buildContainerSpec(representative)).toEqual({
      name: `cove-env-eu-west-1_${OWNER}`,
      Image: 'cove/sandbox:latest',
      Hostname: 'cove',
      User: '1000:1000',
      WorkingDir: '/home/cloudshell-user',
      Env: [
        'AWS_REGION=eu-west-1',
        'COVE_IDENTITY=no AWS credentials',
        'COVE_REGION=eu-west-1',
        'COVE_USER=alice',
        'HOME=/home/cloudshell-user',
        'LANG=C.UTF-8',
        'USER=cloudshell-user',
      ],
      Cmd: ['/usr/local/bin/cove-init'],
      Labels: {
        'cove.managed': 'true',
        'cove.owner': OWNER,
        'cove.region': 'eu-west-1',
        'cove.spec-hash': '05d1d579d83c',
      },
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      OpenStdin: false,
      Tty: false,
      StopTimeout: 5,
      HostConfig: {
        Init: true,
        Privileged: false,
        CapDrop: ['ALL'],
        CapAdd: [],
        SecurityOpt: ['no-new-privileges:true'],
        ReadonlyRootfs: true,
        PidsLimit: 512,
        Memory: 2 * 1024 ** 3,
        MemorySwap: 2 * 1024 ** 3,
        NanoCpus: 1_000_000_000,
        Tmpfs: {
          '/tmp': 'rw,nosuid,nodev,size=256m,mode=1777',
          '/var/tmp': 'rw,nosuid,nodev,size=16m,mode=1777',
        },
        Mounts: [
          {
            Type: 'bind',
            Source: `/var/lib/cove/homes/${OWNER}/eu-west-1`,
            Target: '/home/cloudshell-user',
            ReadOnly: false,
          },
          {
            Type: 'bind',
            Source: `/var/lib/cove/run/creds/${OWNER}-eu-west-1`,
            Target: '/run/cove',
            ReadOnly: true,
          },
        ],
        Binds: [],
        Devices: [],
        IpcMode: 'private',
        NetworkMode: 'cove-eu-west-1',
        RestartPolicy: { Name: 'no' },
        AutoRemove: false,
        LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
      },
    });
  });

  it('gives a throwaway tmpfs home owned by the user when no home path is given', () => {
    const { home: _home, credentials: _creds, ...bare } = representative;
    const built = buildContainerSpec({ ...bare, network: 'none' });
    expect(built.HostConfig?.Mounts).toEqual([]);
    expect(built.HostConfig?.NetworkMode).toBe('none');
    expect(built.HostConfig?.Tmpfs).toEqual({
      '/tmp': 'rw,nosuid,nodev,size=256m,mode=1777',
      '/var/tmp': 'rw,nosuid,nodev,size=16m,mode=1777',
      '/home/cloudshell-user': 'rw,nosuid,nodev,size=256m,uid=1000,gid=1000,mode=0700',
    });
  });

  it('runs the container under the region runtime (gVisor) when one is set, and only then', () => {
    const built = buildContainerSpec({ ...representative, runtime: 'runsc' });
    expect(built).toEqual({
      ...buildContainerSpec(representative),
      Labels: {
        ...buildContainerSpec(representative).Labels,
        'cove.spec-hash': specHash({ ...representative, runtime: 'runsc' }),
      },
      HostConfig: { ...buildContainerSpec(representative).HostConfig, Runtime: 'runsc' },
    });
    expect(buildContainerSpec(representative).HostConfig).not.toHaveProperty('Runtime');
  });

  it('never lets the spec override HOME or USER, but lets it choose LANG', () => {
    const built = buildContainerSpec({
      ...representative,
      env: { HOME: '/', USER: 'root', LANG: 'de_DE.UTF-8' },
    });
    expect(built.Env).toEqual(['HOME=/home/cloudshell-user', 'LANG=de_DE.UTF-8', 'USER=cloudshell-user']);
  });

  it('rejects env names Docker would misparse', () => {
    for (const name of ['A=B', '', '1X', 'A B']) {
      expect(() => buildContainerSpec({ ...representative, env: { [name]: 'x' } })).toThrow(SandboxError);
    }
  });

  it('rejects limits Docker would read as unlimited', () => {
    for (const limits of [
      { ...DEFAULT_LIMITS, pidsLimit: 0 },
      { ...DEFAULT_LIMITS, pidsLimit: -1 },
      { ...DEFAULT_LIMITS, memoryBytes: 0 },
      { ...DEFAULT_LIMITS, cpuMillis: 0 },
      { ...DEFAULT_LIMITS, cpuMillis: 9 },
      { ...DEFAULT_LIMITS, cpuMillis: 0.5 },
      { ...DEFAULT_LIMITS, tmpSizeBytes: 0 },
      { ...DEFAULT_LIMITS, memoryBytes: 1.5 },
    ]) {
      expect(() => buildContainerSpec({ ...representative, limits })).toThrow(/COVE_ERR|limit/);
    }
  });

  it('exports the agreed defaults', () => {
    expect(DEFAULT_LIMITS).toEqual({
      pidsLimit: 512,
      memoryBytes: 2 * 1024 ** 3,
      cpuMillis: 1000,
      tmpSizeBytes: 256 * 1024 ** 2,
    });
  });

  it('turns millicores into NanoCpus, one CPU being 1e9', () => {
    const limits = { ...DEFAULT_LIMITS, cpuMillis: 1500 };
    expect(buildContainerSpec({ ...representative, limits }).HostConfig?.NanoCpus).toBe(1_500_000_000);
    expect(buildContainerSpec(representative).HostConfig?.NanoCpus).toBe(1_000_000_000);
  });

  it("adds extra labels beside Cove's own, and refuses any in cove.*", () => {
    const built = buildContainerSpec({ ...representative, labels: { 'com.example.team': 'red' } });
    expect(built.Labels).toEqual({
      'com.example.team': 'red',
      ...containerLabels(
        representative,
        specHash({ ...representative, labels: { 'com.example.team': 'red' } }),
      ),
    });
    expect(() => buildContainerSpec({ ...representative, labels: { 'cove.owner': 'mallory' } })).toThrow(
      /reserved/,
    );
  });
});

describe('specHash', () => {
  it('is stable across calls and key order', () => {
    const reordered: EnvironmentSpec = {
      env: {
        AWS_REGION: 'eu-west-1',
        COVE_IDENTITY: 'no AWS credentials',
        COVE_REGION: 'eu-west-1',
        COVE_USER: 'alice',
      },
      credentials: representative.credentials!,
      home: representative.home!,
      labels: {},
      limits: {
        tmpSizeBytes: DEFAULT_LIMITS.tmpSizeBytes,
        cpuMillis: 1000,
        memoryBytes: 2 * 1024 ** 3,
        pidsLimit: 512,
      },
      image: 'cove/sandbox:latest',
      region: 'eu-west-1',
      ownerId: OWNER,
      network: 'region',
    };
    // The hash from before the spec was neutral (nanoCpus, host paths, network name): environments
    // made then keep their hash, so none is recreated by the change.
    expect(specHash(representative)).toBe('05d1d579d83c');
    expect(specHash(reordered)).toBe('05d1d579d83c');
  });

  it('changes with anything that shapes the container', () => {
    const base = specHash(representative);
    const variants: EnvironmentSpec[] = [
      { ...representative, image: 'cove/sandbox:abc' },
      { ...representative, limits: { ...DEFAULT_LIMITS, pidsLimit: 256 } },
      { ...representative, limits: { ...DEFAULT_LIMITS, memoryBytes: 1024 ** 3 } },
      { ...representative, limits: { ...DEFAULT_LIMITS, cpuMillis: 2000 } },
      { ...representative, limits: { ...DEFAULT_LIMITS, tmpSizeBytes: 128 * 1024 ** 2 } },
      { ...representative, home: hostDirectory('/elsewhere') },
      { ...representative, credentials: hostDirectory('/elsewhere') },
      { ...representative, env: { ...representative.env, COVE_IDENTITY: '123456789012 / ReadOnlyAccess' } },
      { ...representative, network: 'none' },
      { ...representative, network: undefined },
      { ...representative, labels: { team: 'red' } },
      { ...representative, runtime: 'runsc' },
      { ...representative, ownerId: 'someone-else' },
    ];
    const hashes = new Set(variants.map((v) => specHash(v)));
    expect(hashes.size).toBe(variants.length);
    expect(hashes.has(base)).toBe(false);
  });

  it('maps network policies to Docker networks: the region own, none, or the default bridge', () => {
    const { network: _network, ...onDefault } = representative;
    expect(buildContainerSpec(onDefault).HostConfig?.NetworkMode).toBe('bridge');
    expect(buildContainerSpec(representative).HostConfig?.NetworkMode).toBe('cove-eu-west-1');
    expect(buildContainerSpec({ ...representative, network: 'none' }).HostConfig?.NetworkMode).toBe('none');
  });

  it('keeps the hash of environments without a runtime, and changes it with one', () => {
    expect(specHash({ ...representative, runtime: 'runsc' })).not.toBe(specHash(representative));
  });
});

describe('names', () => {
  const dockerName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

  it('keeps safe ids readable', () => {
    expect(safeSlug(OWNER)).toBe(OWNER);
    expect(safeSlug('eu-west-1')).toBe('eu-west-1');
    expect(containerName({ ownerId: OWNER, region: 'eu-west-1' })).toBe(`cove-env-eu-west-1_${OWNER}`);
  });

  it('hashes odd ids into safe, distinct slugs', () => {
    const odd = [
      'Alice@Example.com',
      'alice@example.com',
      'ALICE',
      'alice',
      '../../etc/passwd',
      '',
      '-',
      '--',
      'a--b',
      'a---b',
      'ユーザー',
      'x'.repeat(200),
      'x'.repeat(201),
      'with space',
      'with\nnewline',
      'alice-example-com',
    ];
    const slugs = odd.map((id) => safeSlug(id));
    expect(new Set(slugs).size).toBe(odd.length);
    for (const slug of slugs) {
      expect(slug).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*(---[0-9a-f]{10})?$/);
      expect(slug.length).toBeLessThanOrEqual(63);
    }
    expect(safeSlug('Alice@Example.com')).toBe('alice-example-com---f8db6f2f05');
    // A safe id that merely looks like a hashed slug cannot be produced: safe ids never hold "--".
    expect(safeSlug('alice-example-com---f8db6f2f05')).not.toBe('alice-example-com---f8db6f2f05');
  });

  it('makes valid, bounded, unambiguous Docker names', () => {
    const keys = [
      { ownerId: 'x', region: 'eu-west-1' },
      { ownerId: '1-x', region: 'eu-west' },
      { ownerId: '../../x', region: 'EU WEST 1' },
      { ownerId: 'y'.repeat(500), region: 'z'.repeat(500) },
    ];
    const names = keys.map((key) => containerName(key));
    expect(new Set(names).size).toBe(keys.length);
    for (const name of names) {
      expect(name).toMatch(dockerName);
      expect(name.length).toBeLessThanOrEqual(9 + 40 + 1 + 63);
    }
  });

  it('labels carry the raw ids and round-trip', () => {
    const key = { ownerId: 'Alice@Example.com', region: 'eu-west-1' };
    const labels = containerLabels(key, 'abc123');
    expect(labels).toEqual({
      'cove.managed': 'true',
      'cove.owner': 'Alice@Example.com',
      'cove.region': 'eu-west-1',
      'cove.spec-hash': 'abc123',
    });
    expect(keyFromLabels(labels)).toEqual(key);
    expect(keyFromLabels({ ...labels, 'cove.managed': 'false' })).toBeUndefined();
    expect(keyFromLabels({ 'cove.managed': 'true' })).toBeUndefined();
  });
});
