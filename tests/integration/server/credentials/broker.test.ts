/**
 * StsCredentialBroker through the real @aws-sdk/client-sts against the local STS on loopback:
 * what reaches STS, the 1 h fallback, refusals, retries, a blackholed STS, and that two users with
 * the same assignment never share credentials.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CredentialRequest } from '../../../../server/credentials/credential-broker.js';
import type { StsCredentialBroker } from '../../../../server/credentials/sts-credential-broker.js';
import { CoveError } from '../../../../server/errors.js';
import { localStsBroker, startLocalSts, type LocalSts } from '../../../helpers/local-sts.js';

const roleArn = 'arn:aws:iam::111122223333:role/Cove-PowerUserAccess';
const alice: CredentialRequest = {
  userId: 'u-alice',
  username: 'alice',
  groups: ['Developers', 'On call'],
  accountId: '111122223333',
  accountName: 'prod',
  permissionSet: 'PowerUserAccess',
  roleArn,
  sessionDurationS: 8 * 3600,
  sessionPolicy: '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:*","Resource":"*"}]}',
};
const bob: CredentialRequest = { ...alice, userId: 'u-bob', username: 'bob', groups: [] };

let sts: LocalSts;
beforeAll(async () => {
  sts = await startLocalSts();
});
afterAll(async () => {
  await sts.close();
});

/** A new broker per test (empty cache), with short backoffs so retries do not slow the suite. */
let broker: StsCredentialBroker;
beforeEach(() => {
  broker = localStsBroker(sts);
  sts.requests.length = 0;
});

async function rejection(promise: Promise<unknown>): Promise<CoveError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CoveError);
  return error as CoveError;
}

describe('StsCredentialBroker against the local STS', () => {
  it('R01 sends exactly the fields of the assignment, signed, and returns what STS issued', async () => {
    const issued = await broker.issue(alice);
    expect(sts.requests).toHaveLength(1);
    const sent = sts.requests[0];
    expect(sent?.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIALOCALSTSCALLER00\/\d{8}\/us-east-1\/sts\//,
    );
    expect(sent).toMatchObject({
      action: 'AssumeRole',
      version: '2011-06-15',
      roleArn,
      roleSessionName: 'alice',
      sourceIdentity: 'alice',
      durationSeconds: 28800,
      policy: alice.sessionPolicy,
      tags: [
        { key: 'cove:user', value: 'alice' },
        { key: 'cove:groups', value: 'Developers/On call' },
      ],
    });
    const record = sts.issued.get(issued.credentials.accessKeyId);
    expect(issued.credentials.accessKeyId).toMatch(/^ASIA[A-Z0-9]{16}$/);
    expect(issued.credentials).toEqual({
      accessKeyId: record?.accessKeyId,
      secretAccessKey: record?.secretAccessKey,
      sessionToken: record?.sessionToken,
      expiration: record?.expiration,
    });
    expect(issued.notice).toBeUndefined();
    expect(await broker.issue(alice)).toBe(issued);
    expect(sts.requests).toHaveLength(1);
  });

  it('R01 two users with the same account and permission set get their own credentials', async () => {
    const [a, b] = await Promise.all([broker.issue(alice), broker.issue(bob)]);
    expect(a.credentials.accessKeyId).not.toBe(b.credentials.accessKeyId);
    expect(sts.issued.get(a.credentials.accessKeyId)?.roleSessionName).toBe('alice');
    expect(sts.issued.get(b.credentials.accessKeyId)?.roleSessionName).toBe('bob');
    expect(sts.issued.get(b.credentials.accessKeyId)?.secretAccessKey).toBe(b.credentials.secretAccessKey);
    expect((await broker.issue(bob)).credentials.accessKeyId).toBe(b.credentials.accessKeyId);
    expect((await broker.issue(alice)).credentials.accessKeyId).toBe(a.credentials.accessKeyId);
  });

  it('R01 a role that allows less than the permission set: asked again for 1 h, with a notice', async () => {
    const shortRole = 'arn:aws:iam::111122223333:role/Cove-ShortRole';
    sts.setMaxDuration(shortRole, 3600);
    const issued = await broker.issue({ ...alice, roleArn: shortRole });
    expect(sts.requests.map((r) => [r.durationSeconds, r.status, r.errorCode])).toEqual([
      [28800, 400, 'ValidationError'],
      [3600, 200, undefined],
    ]);
    expect(issued.notice).toBe(
      'The role Cove-ShortRole in account 111122223333 allows at most 1 h: these credentials last 1 h, not 8 h.',
    );
    expect(sts.issued.get(issued.credentials.accessKeyId)?.durationSeconds).toBe(3600);
  });

  it('F06 AccessDenied reaches the user as a clear 403 without STS message or ARNs, and is not retried', async () => {
    const deniedRole = 'arn:aws:iam::111122223333:role/Cove-Denied';
    sts.denyRole(deniedRole);
    const error = await rejection(broker.issue({ ...alice, roleArn: deniedRole }));
    expect(sts.requests).toHaveLength(1);
    expect(error.statusCode).toBe(403);
    expect(error.code).toBe('COVE_ERR_CREDENTIALS_ASSUME_ROLE');
    expect(error.message).toMatch(
      /^could not assume role Cove-Denied in account 111122223333: AccessDenied\b/,
    );
    expect(JSON.stringify(error.toJSON())).not.toMatch(/arn:|not authorized|cove-server/);
  });

  it('F06 RegionDisabledException is a refusal naming its code', async () => {
    sts.disableRegion(true);
    try {
      const error = await rejection(broker.issue(alice));
      expect(error.statusCode).toBe(403);
      expect(error.message).toContain(': RegionDisabledException');
    } finally {
      sts.disableRegion(false);
    }
  });

  it('F06 Throttling and a 500 are retried, then the credentials arrive', async () => {
    sts.throttleNext(2);
    const issued = await broker.issue(alice);
    expect(sts.requests.map((r) => r.errorCode ?? r.status)).toEqual(['Throttling', 'Throttling', 200]);
    expect(sts.issued.has(issued.credentials.accessKeyId)).toBe(true);

    sts.requests.length = 0;
    sts.failNext(1, 500);
    await broker.issue(bob);
    expect(sts.requests.map((r) => r.errorCode ?? r.status)).toEqual(['InternalFailure', 200]);
  });

  it('F06 STS failing every attempt: 503 with the message the user reads, after a bounded number of tries', async () => {
    sts.failNext(10, 503);
    try {
      const error = await rejection(broker.issue(alice));
      expect(sts.requests).toHaveLength(4);
      expect(error.statusCode).toBe(503);
      expect(error.toJSON()).toEqual({
        code: 'COVE_ERR_CREDENTIALS_UNAVAILABLE',
        message:
          'AWS credentials are unavailable right now (STS did not answer). Your shell still works; try again in a minute.',
      });
    } finally {
      sts.failNext(0);
    }
  });

  it('F06 an STS that never answers: 503 once the per-request timeout and retry budget run out', async () => {
    const impatient = localStsBroker(sts, { requestTimeoutMs: 200, retryBudgetMs: 700 });
    sts.hangNext(10);
    try {
      const error = await rejection(impatient.issue(alice));
      // This broker never got an answer: an install that cannot reach STS, not a blip.
      expect(error.code).toBe('COVE_ERR_CREDENTIALS_NOT_CONFIGURED');
      expect(error.message).not.toMatch(/try again/i);
      expect(impatient.health()).toMatchObject({ status: 'unreachable', lastError: 'Timeout' });
      // Every attempt hung and was cut off by the broker; none was answered.
      expect(sts.requests.length).toBeGreaterThanOrEqual(2);
      expect(sts.requests.length).toBeLessThanOrEqual(4);
      expect(sts.requests.every((r) => r.status === 0)).toBe(true);
    } finally {
      sts.hangNext(0);
    }
  });

  it('R01 short-lived credentials are fetched again on the next call', async () => {
    sts.setExpiresInS(120);
    try {
      const short = { ...alice, roleArn: 'arn:aws:iam::111122223333:role/Cove-ShortLived' };
      const first = await broker.issue(short);
      const second = await broker.issue(short);
      expect(second.credentials.accessKeyId).not.toBe(first.credentials.accessKeyId);
      // Only this role's requests: an attempt the previous test gave up on can still arrive late.
      expect(sts.requests.filter((r) => r.roleArn === short.roleArn)).toHaveLength(2);
    } finally {
      sts.setExpiresInS(null);
    }
  });

  it("F06 serves cached credentials while the local STS fails (5xx, then blackholed), a 503 past the refresh margin, never another user's, and recovers", async () => {
    // The broker's clock is ours, so the refresh margin is reached without waiting; STS's own
    // clock (the expiry it writes) is real time.
    let clockMs = Date.now();
    const clocked = localStsBroker(sts, {
      refreshBeforeS: 300,
      requestTimeoutMs: 200,
      maxAttempts: 4,
      now: () => clockMs,
    });
    const shortAlice: CredentialRequest = { ...alice, sessionDurationS: 900 };
    const shortBob: CredentialRequest = { ...bob, sessionDurationS: 900 };
    const first = await clocked.issue(shortAlice);
    const firstSecrets = [
      first.credentials.accessKeyId,
      first.credentials.secretAccessKey,
      first.credentials.sessionToken,
    ];
    expect(sts.issued.get(first.credentials.accessKeyId)?.durationSeconds).toBe(900);
    const expiresMs = first.credentials.expiration.getTime();
    const outcomes = (from: number): (string | number)[] =>
      sts.requests.slice(from).map((r) => r.errorCode ?? r.status);
    const leaksNothing = (error: CoveError, secrets: readonly string[]): void => {
      const seen = `${error.message} ${JSON.stringify(error.toJSON())} ${String(error.cause)}`;
      for (const secret of secrets) expect(seen).not.toContain(secret);
      expect(JSON.stringify(error.toJSON())).not.toMatch(/arn:|cove-server|InternalFailure|stack/i);
    };

    try {
      // STS answers 500 to everything from here on.
      sts.failNext(10_000, 500);
      clockMs = expiresMs - 600_000;
      expect(await clocked.issue(shortAlice)).toBe(first);
      clockMs = expiresMs - 301_000;
      expect(await clocked.issue(shortAlice)).toBe(first);
      expect(sts.requests).toHaveLength(1);

      // Bob has nothing cached: his request goes to the failing STS and he gets a 503, not Alice's.
      sts.failNext(10_000, 503);
      const bobError = await rejection(clocked.issue(shortBob));
      expect(outcomes(1)).toEqual(Array<string>(4).fill('ServiceUnavailable'));
      expect(bobError.statusCode).toBe(503);
      expect(bobError.code).toBe('COVE_ERR_CREDENTIALS_UNAVAILABLE');
      leaksNothing(bobError, firstSecrets);
      // Alice is still inside her window: served from the cache, no STS request.
      expect(await clocked.issue(shortAlice)).toBe(first);
      expect(sts.requests).toHaveLength(5);

      // Less than refreshBeforeS left: the cache may not be handed out; 503 after the retries.
      sts.failNext(10_000, 500);
      clockMs = expiresMs - 299_000;
      const error = await rejection(clocked.issue(shortAlice));
      expect(outcomes(5)).toEqual(Array<string>(4).fill('InternalFailure'));
      expect(error.statusCode).toBe(503);
      expect(error.toJSON()).toEqual({
        code: 'COVE_ERR_CREDENTIALS_UNAVAILABLE',
        message:
          'AWS credentials are unavailable right now (STS did not answer). Your shell still works; try again in a minute.',
      });
      leaksNothing(error, firstSecrets);

      // Blackholed now: not cached as a failure, nor as the stale credentials: STS is asked again,
      // every attempt hangs until the broker cuts it off.
      sts.failNext(0);
      sts.hangNext(10_000);
      const blackholed = await rejection(clocked.issue(shortAlice));
      expect(blackholed.code).toBe('COVE_ERR_CREDENTIALS_UNAVAILABLE');
      leaksNothing(blackholed, firstSecrets);
      const hung = sts.requests.slice(9);
      expect(hung).toHaveLength(4);
      expect(hung.every((r) => r.status === 0 && r.roleSessionName === 'alice')).toBe(true);
      expect((await rejection(clocked.issue(shortBob))).statusCode).toBe(503);
      expect(sts.requests).toHaveLength(17);
      expect(sts.assumeRoleRequests()).toHaveLength(1);

      // STS answers again: new credentials for each user, no restart of anything.
      sts.hangNext(0);
      const recovered = await clocked.issue(shortAlice);
      expect(recovered.credentials.accessKeyId).not.toBe(first.credentials.accessKeyId);
      expect(sts.issued.get(recovered.credentials.accessKeyId)).toMatchObject({
        roleSessionName: 'alice',
        secretAccessKey: recovered.credentials.secretAccessKey,
        sessionToken: recovered.credentials.sessionToken,
      });
      expect(recovered.credentials.expiration.getTime()).toBeGreaterThan(expiresMs);
      const bobs = await clocked.issue(shortBob);
      expect(sts.issued.get(bobs.credentials.accessKeyId)?.roleSessionName).toBe('bob');
      expect(firstSecrets).not.toContain(bobs.credentials.accessKeyId);
      expect(bobs.credentials.accessKeyId).not.toBe(recovered.credentials.accessKeyId);
      expect(outcomes(17)).toEqual([200, 200]);
    } finally {
      sts.failNext(0);
      sts.hangNext(0);
    }
  });
});
