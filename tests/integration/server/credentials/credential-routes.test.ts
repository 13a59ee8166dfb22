/**
 * POST /api/credentials on a real app (real SQLite, real sessions) whose broker talks to the local
 * STS through the real SDK: who gets what, what is refused identically, what is audited, and that
 * no secret reaches an error body, the audit log or the server log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDirectory } from '../../../../server/directory/seed.js';
import type { CredentialService } from '../../../../server/credentials/credential-service.js';
import type { CliCredentialsResponse } from '../../../../server/protocol/credentials.js';
import { createTestApp, type TestApp } from '../../../helpers/test-app.js';
import { localStsBroker, startLocalSts, type LocalSts } from '../../../helpers/local-sts.js';
import { call, createUser, signIn } from '../directory/admin-client.js';

const prod = '111122223333';
const dev = '444455556666';
let sts: LocalSts;
let t: TestApp;
let alice: string;
let bob: string;
let aliceCookie: string;
let bobCookie: string;
let denyPermissionSet: string;

const post = (cookie: string | undefined, body: unknown) =>
  call(t, 'POST', '/api/credentials', { cookie, body });

beforeAll(async () => {
  sts = await startLocalSts();
  t = await createTestApp(
    {
      regions: [
        { id: 'eu-west-1', name: 'Europe (Ireland)' },
        { id: 'us-east-1', name: 'US East (N. Virginia)' },
      ],
      defaultRegion: 'eu-west-1',
    },
    {
      credentialBroker: localStsBroker(sts, { requestTimeoutMs: 300, retryBudgetMs: 1000 }),
    },
  );
  await seedDirectory(t.app);
  const { directory } = t.app;
  await directory.createAccount({ accountId: prod, name: 'prod' });
  await directory.createAccount({ accountId: dev, name: 'dev' });
  alice = await createUser(t, 'alice');
  bob = await createUser(t, 'bob');
  const developers = await directory.createGroup({ name: 'Developers' });
  await directory.setGroupMembers(developers.id, [alice, bob]);
  await directory.createAssignment({
    principalType: 'group',
    principalId: developers.id,
    accountId: prod,
    permissionSet: 'ReadOnlyAccess',
  });
  await directory.createAssignment({
    principalType: 'user',
    principalId: alice,
    accountId: dev,
    permissionSet: 'PowerUserAccess',
  });
  const denied = await directory.createPermissionSet({ name: 'Denied', sessionDurationS: 3600 });
  denyPermissionSet = denied.name;
  await directory.createAssignment({
    principalType: 'user',
    principalId: alice,
    accountId: dev,
    permissionSet: 'Denied',
  });
  sts.denyRole(`arn:aws:iam::${dev}:role/Cove-Denied`);
  aliceCookie = await signIn(t, alice);
  bobCookie = await signIn(t, bob);
});
afterAll(async () => {
  await t?.close();
  await sts?.close();
});

describe('POST /api/credentials', () => {
  it('R01 gives the user credentials STS issued to them, no-store, in the requested region', async () => {
    const response = await post(aliceCookie, { accountId: prod, permissionSet: 'ReadOnlyAccess' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json<CliCredentialsResponse>();
    const record = sts.issued.get(body.accessKeyId);
    expect(record?.roleSessionName).toBe('alice');
    expect(record?.roleArn).toBe(`arn:aws:iam::${prod}:role/Cove-ReadOnlyAccess`);
    expect(body).toEqual({
      accessKeyId: record?.accessKeyId,
      secretAccessKey: record?.secretAccessKey,
      sessionToken: record?.sessionToken,
      expiration: record?.expiration.toISOString(),
      region: 'eu-west-1',
    });

    const inUs = await post(aliceCookie, {
      accountId: prod,
      permissionSet: 'readonlyaccess',
      region: 'us-east-1',
    });
    expect(inUs.json<CliCredentialsResponse>().region).toBe('us-east-1');
  });

  it("R01 two users with the same assignment: each gets their own, never the other's", async () => {
    const a = (
      await post(aliceCookie, { accountId: prod, permissionSet: 'ReadOnlyAccess' })
    ).json<CliCredentialsResponse>();
    const b = (
      await post(bobCookie, { accountId: prod, permissionSet: 'ReadOnlyAccess' })
    ).json<CliCredentialsResponse>();
    expect(a.accessKeyId).not.toBe(b.accessKeyId);
    expect(sts.issued.get(a.accessKeyId)?.roleSessionName).toBe('alice');
    expect(sts.issued.get(b.accessKeyId)?.roleSessionName).toBe('bob');
    expect(sts.issued.get(b.accessKeyId)?.sessionToken).toBe(b.sessionToken);
  });

  it('A03 401 without a session and with a session still waiting for its MFA code', async () => {
    const before = sts.requests.length;
    const none = await post(undefined, { accountId: prod, permissionSet: 'ReadOnlyAccess' });
    expect(none.statusCode).toBe(401);
    expect(none.json<{ code: string }>().code).toBe('COVE_ERR_AUTH_REQUIRED');
    const { token } = await t.app.sessions.create(alice, 'mfa');
    const pending = await post(`${t.app.sessionCookieName}=${token}`, {
      accountId: prod,
      permissionSet: 'ReadOnlyAccess',
    });
    expect(pending.statusCode).toBe(401);
    expect(sts.requests.length).toBe(before);
  });

  it('H05 403 with one identical body for unknown account, unknown or unassigned permission set; no STS call', async () => {
    const before = sts.requests.length;
    const refusals = await Promise.all(
      [
        { accountId: '000000000000', permissionSet: 'ReadOnlyAccess' },
        { accountId: prod, permissionSet: 'NoSuchSet' },
        { accountId: prod, permissionSet: 'AdministratorAccess' },
        { accountId: dev, permissionSet: 'PowerUserAccess' },
      ].map((body) => post(bobCookie, body)),
    );
    expect(refusals.map((r) => r.statusCode)).toEqual([403, 403, 403, 403]);
    expect(new Set(refusals.map((r) => r.body)).size).toBe(1);
    expect(refusals[0]?.json()).toEqual({
      code: 'COVE_ERR_CREDENTIALS_ACCESS',
      message: 'You do not have that account and permission set. Pick one from the portal.',
    });
    expect(refusals[0]?.headers['cache-control']).toBe('no-store');
    expect(sts.requests.length).toBe(before);
  });

  it('A06 a removed assignment is refused at once, and its cached credentials are dropped', async () => {
    const { directory } = t.app;
    const carol = await createUser(t, 'carol');
    const assignment = await directory.createAssignment({
      principalType: 'user',
      principalId: carol,
      accountId: dev,
      permissionSet: 'ReadOnlyAccess',
    });
    const cookie = await signIn(t, carol);
    const before = await post(cookie, { accountId: dev, permissionSet: 'ReadOnlyAccess' });
    expect(before.statusCode).toBe(200);
    await directory.deleteAssignment(assignment.id);
    const after = await post(cookie, { accountId: dev, permissionSet: 'ReadOnlyAccess' });
    expect(after.statusCode).toBe(403);
    expect(after.json<{ code: string }>().code).toBe('COVE_ERR_CREDENTIALS_ACCESS');

    // Assigned again within the panel's 5 minutes: new credentials, not the ones from before.
    await directory.createAssignment({
      principalType: 'user',
      principalId: carol,
      accountId: dev,
      permissionSet: 'ReadOnlyAccess',
    });
    const again = await post(cookie, { accountId: dev, permissionSet: 'ReadOnlyAccess' });
    expect(again.json<CliCredentialsResponse>().accessKeyId).not.toBe(
      before.json<CliCredentialsResponse>().accessKeyId,
    );
  });

  it('F06 AccessDenied from STS: a clear 403 naming the role and account, no ARN', async () => {
    const response = await post(aliceCookie, { accountId: dev, permissionSet: denyPermissionSet });
    expect(response.statusCode).toBe(403);
    const body = response.json<{ code: string; message: string }>();
    expect(body.code).toBe('COVE_ERR_CREDENTIALS_ASSUME_ROLE');
    expect(body.message).toMatch(
      /^could not assume role Cove-Denied in account 444455556666: AccessDenied\b/,
    );
    expect(response.body).not.toMatch(/arn:|not authorized/);
  });

  it('F06 STS not answering: 503 with the message the user reads', async () => {
    sts.hangNext(10);
    try {
      const response = await post(aliceCookie, { accountId: dev, permissionSet: 'PowerUserAccess' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toEqual({
        code: 'COVE_ERR_CREDENTIALS_UNAVAILABLE',
        message:
          'AWS credentials are unavailable right now (STS did not answer). Your shell still works; try again in a minute.',
      });
    } finally {
      sts.hangNext(0);
    }
  });

  it('H05 a region that is not configured is a 400 naming the allowed ones', async () => {
    const response = await post(aliceCookie, {
      accountId: prod,
      permissionSet: 'ReadOnlyAccess',
      region: 'xx-fake-1',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json<{ message: string }>().message).toContain('eu-west-1, us-east-1');
  });

  it('R02 every issue is audited with user, account, permission set, expiry and purpose, never a secret', async () => {
    const response = await post(bobCookie, { accountId: prod, permissionSet: 'ReadOnlyAccess' });
    const body = response.json<CliCredentialsResponse>();
    const [entry] = await t.store.audit.list({ action: 'credentials.issue', limit: 1 });
    expect(entry).toMatchObject({
      actorId: bob,
      actorName: 'bob',
      action: 'credentials.issue',
      target: `${prod}/ReadOnlyAccess`,
      details: {
        accountId: prod,
        accountName: 'prod',
        permissionSet: 'ReadOnlyAccess',
        expiration: body.expiration,
        purpose: 'cli',
      },
    });
    expect(entry?.ip).toBeTruthy();
    const everything = JSON.stringify(await t.store.audit.list({ limit: 1000 }));
    for (const issued of sts.issued.values()) {
      expect(everything).not.toContain(issued.accessKeyId);
      expect(everything).not.toContain(issued.secretAccessKey);
      expect(everything).not.toContain(issued.sessionToken);
    }
  });

  it('shells: audited once per set of credentials STS issued, not on every cache hit', async () => {
    const dave = await createUser(t, 'dave');
    await t.app.directory.createAssignment({
      principalType: 'user',
      principalId: dave,
      accountId: prod,
      permissionSet: 'Billing',
    });
    const credentials: CredentialService = t.app.credentials;
    const first = await credentials.forAssignment(dave, prod, 'Billing', { minRemainingS: 16 * 60 });
    const again = await credentials.forAssignment(dave, prod, 'billing', { minRemainingS: 16 * 60 });
    expect(again.credentials.accessKeyId).toBe(first.credentials.accessKeyId);
    const entries = (await t.store.audit.list({ action: 'credentials.issue', limit: 100 })).filter(
      (e) => e.actorId === dave,
    );
    expect(entries.map((e) => e.details.purpose)).toEqual(['shell']);
    expect(entries[0]?.ip).toBeNull();
  });

  it('R02 the server log holds no key id, secret or session token', () => {
    const log = t.logs.join('');
    expect(sts.issued.size).toBeGreaterThanOrEqual(3);
    for (const issued of sts.issued.values()) {
      expect(log).not.toContain(issued.accessKeyId);
      expect(log).not.toContain(issued.secretAccessKey);
      expect(log).not.toContain(issued.sessionToken);
    }
    expect(log).not.toMatch(/ASIA[A-Z0-9]{16}/);
  });
});
