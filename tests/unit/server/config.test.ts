import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildConfig,
  ConfigError,
  defaultInstanceId,
  loadConfig,
  trustedProxyProblem,
} from '../../../server/config.js';

function problemsOf(raw: unknown, env: Record<string, string> = {}): string[] {
  try {
    buildConfig(raw, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('buildConfig', () => {
  it('gives a working single-machine config from nothing', () => {
    const config = buildConfig({});
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8080);
    expect(config.publicUrl).toBe('http://127.0.0.1:8080');
    expect(config.dataDir).toBe('./data');
    expect(config.auth.sessionTtlS).toBe(8 * 3600);
    expect(config.regions).toEqual([{ id: 'us-east-1', name: 'US East (N. Virginia)' }]);
    expect(config.defaultRegion).toBe('us-east-1');
    expect(config.security).toEqual({
      egressPolicy: process.platform === 'linux' && process.getuid?.() === 0 ? 'enforce' : 'warn',
      egressHelperSocket: '',
      versionGate: 'warn',
      versionGateAccept: [],
    });
    expect(config.sandbox).toMatchObject({
      pidsLimit: 512,
      memoryBytes: 2 * 1024 ** 3,
      cpuMillis: 1000,
      maxTerminalsPerUser: 10,
    });
    expect(config.homes).toEqual({
      sizeBytes: 1024 ** 3,
      retentionDays: 120,
      enabled: true,
      reserveBytes: 1024 ** 3,
      ownerUid: 1000,
      sweepIntervalS: 86_400,
      sweepDelayS: 300,
      usageCheckIntervalS: 45,
    });
  });

  it('lets COVE_* variables override the file', () => {
    const config = buildConfig(
      { port: 9000, auth: { sessionTtlS: 100 } },
      {
        COVE_PORT: '9100',
        COVE_AUTH_REQUIRE_MFA: 'true',
        COVE_PUBLIC_URL: 'https://cove.example.com/',
        COVE_REGIONS: '[{"id":"eu-west-1","name":"Ireland"}]',
      },
    );
    expect(config.port).toBe(9100);
    expect(config.auth.sessionTtlS).toBe(100);
    expect(config.auth.requireMfa).toBe(true);
    expect(config.publicUrl).toBe('https://cove.example.com');
    expect(config.defaultRegion).toBe('eu-west-1');
  });

  it('names every bad key with what is wrong', () => {
    const problems = problemsOf(
      { port: 'eighty', bogus: 1, auth: { sessionTtlS: 5 }, regions: [{ id: 'Mars', name: 'x' }] },
      { COVE_AUTH_REQUIRE_MFA: 'maybe' },
    );
    const text = problems.join('\n');
    expect(text).toMatch(/COVE_AUTH_REQUIRE_MFA="maybe" must be true or false/);
    expect(text).toMatch(/^port: /m);
    expect(text).toMatch(/auth\.sessionTtlS/);
    expect(text).toMatch(/regions\.0\.id/);
    expect(text).toMatch(/bogus|additional/i);
  });

  it('refuses a malformed env number, a bad public URL and an unknown default region', () => {
    expect(problemsOf({}, { COVE_PORT: '80a' }).join()).toMatch(/COVE_PORT="80a" must be a whole number/);
    expect(problemsOf({ publicUrl: 'ftp://x' }).join()).toMatch(/publicUrl: must start with http/);
    expect(problemsOf({ publicUrl: 'not a url' }).join()).toMatch(/publicUrl: "not a url" is not a URL/);
    expect(problemsOf({ defaultRegion: 'eu-west-9' }).join()).toMatch(
      /defaultRegion: "eu-west-9" is not one of/,
    );
    expect(
      problemsOf({
        regions: [
          { id: 'eu-west-1', name: 'a' },
          { id: 'eu-west-1', name: 'b' },
        ],
      }).join(),
    ).toMatch(/unique/);
  });

  it('still reads the CPU limit in nano CPUs, the spelling before cpuMillis', () => {
    expect(buildConfig({ sandbox: { nanoCpus: 500_000_000 } }).sandbox.cpuMillis).toBe(500);
    expect(buildConfig({ sandbox: { nanoCpus: 5e8, cpuMillis: 2000 } }).sandbox.cpuMillis).toBe(2000);
    expect(problemsOf({ sandbox: { nanoCpus: 1000 } })).toEqual([
      expect.stringMatching(/^sandbox\.cpuMillis: .*10/),
      expect.stringMatching(/^sandbox\.nanoCpus: /),
    ]);
  });

  it('takes a region backend, or the older docker endpoint, but not both', () => {
    const config = buildConfig({
      regions: [
        { id: 'us-east-1', name: 'A', backend: { type: 'docker', host: 'engine.example', port: 2376 } },
        { id: 'eu-west-1', name: 'B', docker: { socketPath: '/run/docker.sock' } },
      ],
    });
    expect(config.regions[0]?.backend).toEqual({ type: 'docker', host: 'engine.example', port: 2376 });
    expect(config.regions[1]?.docker).toEqual({ socketPath: '/run/docker.sock' });
    expect(
      problemsOf({ regions: [{ id: 'us-east-1', name: 'A', backend: { type: 'docker' }, docker: {} }] }),
    ).toEqual(['regions: us-east-1 gives both backend and docker; put the endpoint in backend']);
    expect(
      problemsOf({ regions: [{ id: 'us-east-1', name: 'A', backend: { type: 'kubernetes' } }] }),
    ).toEqual([expect.stringMatching(/^regions\.0\.backend\.type: /)]);
  });

  it('refuses a data dir so long that its unix sockets would pass the 107-byte limit', () => {
    const long = `/srv/${'d'.repeat(60)}`;
    const [problem] = problemsOf({ dataDir: long });
    expect(problem).toContain(`dataDir: "${long}" is too long`);
    expect(problem).toMatch(/would be 120 bytes and Linux allows 107; use a directory of at most 52 bytes/);
    expect(problemsOf({ dataDir: '/var/lib/cove' })).toEqual([]);
    expect(problemsOf({ dataDir: `/${'d'.repeat(51)}` })).toEqual([]);
    expect(problemsOf({ dataDir: `/${'d'.repeat(52)}` })).toHaveLength(1);
  });

  it('names each process: COVE_INSTANCE_ID, or the host name with a random suffix', () => {
    expect(buildConfig({}, { COVE_INSTANCE_ID: 'cove-a.eu_1' }).instanceId).toBe('cove-a.eu_1');
    const first = buildConfig({}).instanceId;
    const second = buildConfig({}).instanceId;
    expect(first).toMatch(/^[A-Za-z0-9._-]{1,57}-[0-9a-f]{6}$/);
    expect(first).not.toBe(second);
    expect(defaultInstanceId('web 1.example.com')).toMatch(/^web-1\.example\.com-[0-9a-f]{6}$/);
    expect(defaultInstanceId('h'.repeat(100))).toHaveLength(64);
    expect(defaultInstanceId('')).toMatch(/^cove-[0-9a-f]{6}$/);
    for (const bad of ['two words', 'x'.repeat(65), 'name/with/slashes', 'ünïcode'])
      expect(problemsOf({ instanceId: bad }).join()).toMatch(
        /instanceId: ".*" must be 1 to 64 of A-Z, a-z, 0-9, "\.", "_" and "-"/,
      );
  });

  it('reads trusted proxies as a list, from the file or comma-separated from the environment', () => {
    expect(buildConfig({}).trustedProxies).toEqual([]);
    expect(buildConfig({}, { COVE_TRUSTED_PROXIES: '' }).trustedProxies).toEqual([]);
    expect(
      buildConfig({}, { COVE_TRUSTED_PROXIES: ' 127.0.0.1, 10.0.0.0/8 ,::1,fd00::/8,loopback' })
        .trustedProxies,
    ).toEqual(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8', 'loopback']);
    expect(buildConfig({ trustedProxies: ['192.0.2.10'] }).trustedProxies).toEqual(['192.0.2.10']);
  });

  it('refuses trusted proxies that are not addresses or CIDRs, or that trust everyone', () => {
    expect(trustedProxyProblem('proxy.example.com')).toMatch(/is not an IP address or CIDR/);
    expect(trustedProxyProblem('10.0.0.0/33')).toMatch(/prefix length must be a number from 1 to 32/);
    expect(trustedProxyProblem('fd00::/129')).toMatch(/from 1 to 128/);
    expect(trustedProxyProblem('10.0.0.0/x')).toMatch(/prefix length/);
    expect(trustedProxyProblem('10.0.0.0/8/8')).toMatch(/not an IP address or CIDR/);
    expect(trustedProxyProblem('0.0.0.0/0')).toMatch(/trusts every address/);
    expect(trustedProxyProblem('::/0')).toMatch(/trusts every address/);
    for (const good of ['127.0.0.1', '10.0.0.0/8', '::1', '2001:db8::/32', 'loopback', 'uniquelocal'])
      expect(trustedProxyProblem(good)).toBeUndefined();
    expect(problemsOf({}, { COVE_TRUSTED_PROXIES: '127.0.0.1,nginx' })).toEqual([
      'trustedProxies: "nginx" is not an IP address or CIDR (examples: 127.0.0.1, 10.0.0.0/8, fd00::/8, loopback) (COVE_TRUSTED_PROXIES)',
    ]);
  });

  it('refuses the old trust-everyone switch with what to set instead; its off value is harmless', () => {
    for (const [raw, env] of [
      [{ trustProxy: true }, {}],
      [{}, { COVE_TRUST_PROXY: 'true' }],
      [{}, { COVE_TRUST_PROXY: '1' }],
      [{}, { COVE_TRUST_PROXY: 'perhaps' }],
    ] as const) {
      const problems = problemsOf(raw, env);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^trustProxy \(COVE_TRUST_PROXY\) is no longer supported/);
      expect(problems[0]).toMatch(/per-address sign-in throttle/);
      expect(problems[0]).toMatch(/COVE_TRUSTED_PROXIES=127\.0\.0\.1/);
    }
    expect(problemsOf({ trustProxy: false })).toEqual([]);
    expect(problemsOf({}, { COVE_TRUST_PROXY: 'false' })).toEqual([]);
    expect(problemsOf({ trustProxy: 2 }).join()).toMatch(
      /trustProxy: no longer supported; list your reverse/,
    );
  });

  it('keeps /metrics off without a token and refuses a short one', () => {
    expect(buildConfig({}).metrics).toEqual({ token: '' });
    const token = 'a'.repeat(32);
    expect(buildConfig({}, { COVE_METRICS_TOKEN: token }).metrics.token).toBe(token);
    for (const bad of ['a'.repeat(31), `${'a'.repeat(20)} ${'a'.repeat(20)}`])
      expect(problemsOf({ metrics: { token: bad } }).join()).toMatch(
        /metrics\.token: must be at least 32 visible ASCII characters without spaces/,
      );
  });
});

describe('auth.oidc', () => {
  const provider = { id: 'corp', name: 'Corp', issuer: 'https://idp.example.com', clientId: 'cove' };

  it('fills each provider with defaults and always asks for openid', () => {
    const config = buildConfig({ auth: { oidc: [{ ...provider, scopes: ['profile', 'groups'] }] } });
    expect(config.auth.oidc[0]).toMatchObject({
      scopes: ['openid', 'profile', 'groups'],
      usernameClaim: 'preferred_username',
      emailClaim: 'email',
      groupsClaim: 'groups',
      provisioning: 'jit',
      trustIdpMfa: false,
      adminsFromClaim: false,
      clientSecret: '',
    });
    expect(config.auth.oidcClockToleranceS).toBe(60);
  });

  it('takes the client secret from COVE_AUTH_OIDC_<ID>_CLIENT_SECRET, and a file over both', () => {
    const raw = { auth: { oidc: [{ ...provider, id: 'corp-sso', clientSecret: 'from-file-config' }] } };
    expect(
      buildConfig(raw, { COVE_AUTH_OIDC_CORP_SSO_CLIENT_SECRET: 'from-env' }).auth.oidc[0]?.clientSecret,
    ).toBe('from-env');
    const dir = mkdtempSync(join(tmpdir(), 'cove-oidc-secret-'));
    writeFileSync(join(dir, 'secret'), 'from-mounted-file\n');
    const withFile = { auth: { oidc: [{ ...provider, clientSecretFile: join(dir, 'secret') }] } };
    const config = buildConfig(withFile, { COVE_AUTH_OIDC_CORP_CLIENT_SECRET: 'from-env' });
    expect(config.auth.oidc[0]?.clientSecret).toBe('from-mounted-file');
    expect(config.auth.oidc[0]?.clientSecretFile).toBe('');
  });

  it('reads providers from COVE_AUTH_OIDC as JSON', () => {
    const config = buildConfig({}, { COVE_AUTH_OIDC: JSON.stringify([provider]) });
    expect(config.auth.oidc.map((p) => p.id)).toEqual(['corp']);
  });

  it('refuses duplicate ids, bad slugs, plain-http issuers off loopback and unreadable secret files', () => {
    const problems = problemsOf({
      auth: {
        oidc: [
          provider,
          { ...provider, issuer: 'http://idp.example.com' },
          { ...provider, id: 'other', clientSecretFile: '/nonexistent/cove-secret' },
        ],
      },
    });
    expect(problems).toContain('auth.oidc: provider ids must be unique');
    expect(problems.some((p) => p.startsWith('auth.oidc[1].issuer:') && p.includes('must use https'))).toBe(
      true,
    );
    expect(problems).toContain('auth.oidc[2].clientSecretFile: cannot read it (ENOENT)');
    expect(problemsOf({ auth: { oidc: [{ ...provider, id: 'Bad Id' }] } }).join()).toMatch(
      /auth\.oidc\.0\.id/,
    );
    expect(problemsOf({ auth: { oidc: [{ ...provider, issuer: 'http://127.0.0.1:9000' }] } })).toEqual([]);
  });
});

describe('loadConfig', () => {
  it('reads the file named by COVE_CONFIG and reports invalid JSON clearly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cove-config-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ port: 8123 }));
    expect(loadConfig({ COVE_CONFIG: good }).config.port).toBe(8123);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ nope');
    expect(() => loadConfig({ COVE_CONFIG: bad })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ COVE_CONFIG: join(dir, 'missing.json') })).toThrow(/does not exist/);
  });

  it('keeps the admin password out of the config object', () => {
    const { config, settings } = loadConfig({ COVE_ADMIN_PASSWORD: 'correct horse battery' });
    expect(settings.adminPassword).toBe('correct horse battery');
    expect(JSON.stringify(config)).not.toContain('correct horse battery');
  });
});
