// The guard's decisions with a scripted firewall: enforce refuses with a coded 503, warn only logs,
// a flushed firewall is put back before anything is refused, and the version gate refuses by config.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type Docker from 'dockerode';
import { buildConfig } from '../../../../server/config.js';
import { CoveError } from '../../../../server/errors.js';
import { SandboxGuard } from '../../../../server/environments/sandbox-guard.js';
import type { EgressPolicy } from '../../../../sandbox/docker/egress-policy.js';
import { checkEngineVersions } from '../../../../sandbox/docker/engine-version.js';

const log = pino({ level: 'silent' });

class ScriptedPolicy implements EgressPolicy {
  installs = 0;
  constructor(
    public problems: string[],
    private readonly installFixes: boolean,
  ) {}
  async install(): Promise<void> {
    this.installs++;
    if (this.installFixes) this.problems = [];
  }
  async check(): Promise<string[]> {
    return [...this.problems];
  }
}

const configWith = (security: Record<string, unknown>) => buildConfig({ security });
let clock = 0;
const now = () => (clock += 10_000); // every call is past the recheck window

describe('SandboxGuard', () => {
  it('enforce: refuses with COVE_ERR_ENVIRONMENT_NETWORK_POLICY when the rules cannot be put back', async () => {
    const policy = new ScriptedPolicy(['the iptables chain COVE-EGRESS is missing'], false);
    const guard = new SandboxGuard({ config: configWith({ egressPolicy: 'enforce' }), log, policy, now });
    await guard.init();
    const refusal = await guard.assertCanStart('us-east-1').catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(CoveError);
    expect((refusal as CoveError).toJSON()).toEqual({
      code: 'COVE_ERR_ENVIRONMENT_NETWORK_POLICY',
      message:
        "Cove's network protection for containers is not in place, so no environment is started. An administrator must fix it: the server log lists the missing firewall rules (see docs/hardening.md).",
    });
    expect((refusal as CoveError).statusCode).toBe(503);
    expect(await guard.networkReady()).toBe(false);
  });

  it('puts back rules that vanished while running, then lets the start go on', async () => {
    const policy = new ScriptedPolicy([], true);
    const guard = new SandboxGuard({ config: configWith({ egressPolicy: 'enforce' }), log, policy, now });
    await guard.init();
    const installsAtStart = policy.installs;
    policy.problems = ['the jump "-A INPUT -i cove-br-+ -j COVE-HOST" is missing from iptables INPUT'];
    await expect(guard.assertCanStart('us-east-1')).resolves.toBeUndefined();
    expect(policy.installs).toBe(installsAtStart + 1);
    expect(await guard.networkReady()).toBe(true);
  });

  it('warn: starts anyway (and says so in the log), off: never looks', async () => {
    const policy = new ScriptedPolicy(['missing'], false);
    const warn = new SandboxGuard({ config: configWith({ egressPolicy: 'warn' }), log, policy, now });
    await warn.init();
    await expect(warn.assertCanStart('us-east-1')).resolves.toBeUndefined();
    expect(await warn.networkReady()).toBe(false);

    const off = new SandboxGuard({ config: configWith({ egressPolicy: 'off' }), log, now });
    await off.init();
    await expect(off.assertCanStart('us-east-1')).resolves.toBeUndefined();
    expect(await off.networkReady()).toBe(true);
  });

  const oldEngine = {
    Version: '20.10.24',
    Components: [
      { Name: 'Engine', Version: '20.10.24' },
      { Name: 'containerd', Version: '1.6.20' },
      { Name: 'runc', Version: '1.1.5' },
    ],
  } as unknown as Docker.DockerVersion;

  it('version gate refuse: no environment starts on an engine without the escape fixes', async () => {
    const guard = new SandboxGuard({
      config: configWith({ egressPolicy: 'off', versionGate: 'refuse' }),
      log,
      now,
    });
    await guard.init(async (_region, accept) => checkEngineVersions(oldEngine, accept));
    await expect(guard.assertCanStart('us-east-1')).rejects.toMatchObject({
      code: 'COVE_ERR_ENVIRONMENT_ENGINE_OUTDATED',
      statusCode: 503,
    });
    expect(
      guard
        .engineFindings()
        .get('us-east-1')
        ?.map((f) => f.component),
    ).toEqual(['runc', 'runc', 'containerd', 'engine']);
  });

  it('version gate warn (the default): the same engine only warns', async () => {
    const guard = new SandboxGuard({ config: configWith({ egressPolicy: 'off' }), log, now });
    await guard.init(async (_region, accept) => checkEngineVersions(oldEngine, accept));
    await expect(guard.assertCanStart('us-east-1')).resolves.toBeUndefined();
    expect(guard.engineFindings().get('us-east-1')).toHaveLength(4);
  });
});
