import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig, ConfigError, loadConfig } from '../../../server/config.js';

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
      nanoCpus: 1e9,
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

  it('refuses a data dir so long that its unix sockets would pass the 107-byte limit', () => {
    const long = `/srv/${'d'.repeat(60)}`;
    const [problem] = problemsOf({ dataDir: long });
    expect(problem).toContain(`dataDir: "${long}" is too long`);
    expect(problem).toMatch(/would be 120 bytes and Linux allows 107; use a directory of at most 52 bytes/);
    expect(problemsOf({ dataDir: '/var/lib/cove' })).toEqual([]);
    expect(problemsOf({ dataDir: `/${'d'.repeat(51)}` })).toEqual([]);
    expect(problemsOf({ dataDir: `/${'d'.repeat(52)}` })).toHaveLength(1);
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
