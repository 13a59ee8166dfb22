/**
 * Proposed ids L01–L05 (issue 22, "Open in Cove" links; not in SECURITY-TESTS.md yet): the two link
 * routes (`GET /api/links/repository`, `POST /api/environments/:region/clones`) and the shell page's
 * identity check, attacked through the real app with the fake driver, so "nothing ran" is
 * observable. The CSRF side of the POST is H07 (csrf-matrix.test.ts reads it from the app).
 */
import type { EnvironmentKey, ExecOptions, ExecResult } from '../../sandbox/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { region, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';

const prod = '121212121212';
const dev = '343434343434';
const allowed = 'https://git.example.org/acme/';

describe('Open in Cove link attacks', () => {
  let rig: SecurityRig;
  let alice: RigUser;
  let bob: RigUser;
  const execs: { key: EnvironmentKey; cmd: readonly string[]; options: ExecOptions | undefined }[] = [];

  beforeAll(async () => {
    rig = await startSecurityRig({ links: { gitAllowedPrefixes: [allowed] } });
    alice = await rig.user('alice');
    bob = await rig.user('bob');
    const { directory } = rig.t.app;
    await directory.createAccount({ accountId: prod, name: 'prod' });
    await directory.createAccount({ accountId: dev, name: 'dev' });
    await directory.createAssignment({
      principalType: 'user',
      principalId: alice.id,
      accountId: prod,
      permissionSet: 'ReadOnlyAccess',
    });
    await directory.createAssignment({
      principalType: 'user',
      principalId: bob.id,
      accountId: dev,
      permissionSet: 'PowerUserAccess',
    });
    // The fake driver's exec only checks the environment runs; record what the routes ask it to run.
    const fakeExec = rig.driver.exec.bind(rig.driver);
    const recordingExec = async (
      key: EnvironmentKey,
      cmd: readonly string[],
      options?: ExecOptions,
    ): Promise<ExecResult> => {
      await fakeExec(key);
      execs.push({ key, cmd, options });
      return { exitCode: 0, stdout: Buffer.from('cloned\n'), stderr: Buffer.alloc(0) };
    };
    Object.assign(rig.driver, { exec: recordingExec });
  });
  afterAll(async () => {
    await rig?.close();
  });

  const clone = (user: RigUser | undefined, git: unknown, inRegion = region) =>
    rig.request(user, 'POST', `/api/environments/${inRegion}/clones`, { git });
  const check = (user: RigUser | undefined, git: string) =>
    rig.request(user, 'GET', `/api/links/repository?${new URLSearchParams({ git })}`);

  it('L01 without a session both routes are 401 and nothing runs', async () => {
    expect((await check(undefined, `${allowed}tools.git`)).statusCode).toBe(401);
    expect((await clone(undefined, `${allowed}tools.git`)).statusCode).toBe(401);
    expect(execs).toHaveLength(0);
  });

  it.each([
    ['javascript:alert(1)', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['ssh://git@git.example.org/acme/tools.git', 'scheme'],
    ['ext::sh -c id', 'invalid'],
    ['--upload-pack=touch /tmp/x', 'invalid'],
    [`https://user:token@git.example.org/acme/tools.git`, 'credentials'],
    [`${allowed}tools.git\u0000`, 'invalid'],
    [`${allowed}to\u202Eols.git`, 'invalid'],
    [`${allowed}tools.git\r\nHost: evil`, 'invalid'],
    ['https://git.example.org.evil.io/acme/tools.git', 'not-allowed'],
    ['https://git.example.org/other/tools.git', 'not-allowed'],
    [`${allowed}..%2F..%2Fetc`, 'folder'],
    [`${allowed}${'a'.repeat(3000)}`, 'invalid'],
  ])('L02 git=%j is refused by both routes with the reason, and nothing runs', async (git, problem) => {
    const checked = await check(alice, git);
    expect(checked.statusCode).toBe(400);
    expect(checked.json()).toMatchObject({ code: 'COVE_ERR_LINK_GIT_REFUSED', problem });
    const cloned = await clone(alice, git);
    expect(cloned.statusCode).toBe(400);
    expect(cloned.json()).toMatchObject({ code: 'COVE_ERR_LINK_GIT_REFUSED', problem });
    expect(execs).toHaveLength(0);
  });

  it('L02 an oversized or mistyped body is a 400, and nothing runs', async () => {
    expect((await clone(alice, `${allowed}${'a'.repeat(20_000)}`)).statusCode).toBe(400);
    expect((await clone(alice, ['https://x/'])).statusCode).toBe(400);
    const extra = await rig.request(alice, 'POST', `/api/environments/${region}/clones`, {
      git: `${allowed}tools.git`,
      folder: '../../etc',
    });
    // Unknown fields are dropped by the schema, never used: this one then meets the L03 409.
    expect(extra.statusCode).toBe(409);
    expect(execs).toHaveLength(0);
  });

  it('L03 a clone never starts an environment: not running is a 409, and no container is made', async () => {
    const before = rig.driver.calls.length;
    const response = await clone(alice, `${allowed}tools.git`);
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ code: 'COVE_ERR_LINK_NOT_RUNNING' });
    expect(rig.driver.calls.slice(before).filter((c) => c.startsWith('ensure'))).toEqual([]);
    expect(execs).toHaveLength(0);
  });

  it("L03 the clone runs in the caller's own environment only, as the user, URL and folder as arguments", async () => {
    await rig.t.app.environments.ensure({ id: alice.id, username: alice.username }, region);
    await rig.t.app.environments.ensure({ id: bob.id, username: bob.username }, region);
    const response = await clone(alice, `${allowed}tools.git`);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({ url: `${allowed}tools.git`, folder: 'tools', outcome: 'cloned' });
    expect(execs).toHaveLength(1);
    expect(execs[0]?.key).toEqual({ ownerId: alice.id, region });
    expect(execs[0]?.options?.user).toBeUndefined();
    expect(execs[0]?.cmd.slice(-3)).toEqual(['tools', `${allowed}tools.git`, '120']);
    // No parameter names another user, environment or folder: extra fields are dropped, not used.
    const foreign = await rig.request(alice, 'POST', `/api/environments/${region}/clones`, {
      git: `${allowed}tools.git`,
      ownerId: bob.id,
      folder: '../../etc',
    });
    expect(foreign.statusCode).toBe(200);
    expect(execs).toHaveLength(2);
    expect(execs[1]?.key).toEqual({ ownerId: alice.id, region });
    expect(execs[1]?.cmd.slice(-3)).toEqual(['tools', `${allowed}tools.git`, '120']);
    expect(execs.some((e) => e.key.ownerId === bob.id)).toBe(false);
  });

  it('L04 the shell page answers one identical 403 for an unknown and an unassigned identity, 404 for an unknown region', async () => {
    const page = (query: string, inRegion = region) =>
      rig.request(
        alice,
        'GET',
        `/shell/${inRegion}?${query}&git=${encodeURIComponent(`${allowed}t.git`)}&cmd=ls`,
      );
    const refusals = await Promise.all([
      page(`account=${dev}&permissionSet=PowerUserAccess`),
      page(`account=${prod}&permissionSet=AdministratorAccess`),
      page(`account=000000000000&permissionSet=ReadOnlyAccess`),
      page(`account=${prod}&permissionSet=NoSuchSet`),
      page(`account=${prod}`),
      page(`permissionSet=ReadOnlyAccess`),
    ]);
    for (const response of refusals) {
      expect(response.statusCode).toBe(403);
      expect(response.body).toBe(refusals[0]?.body);
      expect(response.body).toContain('No access to that account');
    }
    const own = await page(`account=${prod}&permissionSet=ReadOnlyAccess`);
    expect(own.statusCode).not.toBe(403);
    expect((await page(`account=${prod}&permissionSet=ReadOnlyAccess`, 'mars-north-1')).statusCode).toBe(404);
    expect(rig.driver.calls.filter((c) => c.startsWith('ensure') && c.includes(alice.id))).toHaveLength(1);
  });

  it('L05 the link pages cannot be framed (frame-ancestors none, X-Frame-Options DENY)', async () => {
    const response = await rig.request(
      alice,
      'GET',
      `/shell/${region}?account=${prod}&permissionSet=ReadOnlyAccess&cmd=ls`,
    );
    expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(response.headers['x-frame-options']).toBe('DENY');
  });
});
