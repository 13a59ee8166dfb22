/**
 * StsCredentialBroker with a fake STS client and a fake clock: session names, cache and refresh,
 * single-flight, retries and what the user reads when STS fails. The real SDK against the local
 * STS is in tests/integration/server/credentials/broker.test.ts.
 */
import type { AssumeRoleCommand, AssumeRoleCommandOutput } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import type { CredentialRequest } from '../../../../server/credentials/credential-broker.js';
import {
  StsCredentialBroker,
  type StsClientLike,
} from '../../../../server/credentials/sts-credential-broker.js';
import { stsGroupsTag, stsSessionName } from '../../../../server/credentials/sts-session-names.js';
import { CoveError } from '../../../../server/errors.js';

const request: CredentialRequest = {
  userId: 'u-alice',
  username: 'alice',
  groups: ['Developers'],
  accountId: '111122223333',
  accountName: 'prod',
  permissionSet: 'Admin',
  roleArn: 'arn:aws:iam::111122223333:role/Cove-Admin',
  sessionDurationS: 8 * 3600,
  sessionPolicy: null,
};

type Answer = 'ok' | { name: string; status?: number; message?: string };

/** Answers from a script (then 'ok'); records every command; `gate` holds answers back. */
class FakeSts implements StsClientLike {
  readonly calls: AssumeRoleCommand['input'][] = [];
  private n = 0;
  gate: Promise<void> = Promise.resolve();
  constructor(
    private readonly clock: { now: number },
    private readonly script: Answer[] = [],
    private readonly lifetimeS = 3600,
  ) {}

  async send(command: AssumeRoleCommand): Promise<AssumeRoleCommandOutput> {
    this.calls.push(command.input);
    const answer = this.script.shift() ?? 'ok';
    await this.gate;
    if (answer !== 'ok')
      throw Object.assign(new Error(answer.message ?? answer.name), {
        name: answer.name,
        $metadata: answer.status === undefined ? {} : { httpStatusCode: answer.status },
      });
    this.n++;
    return {
      $metadata: { httpStatusCode: 200 },
      Credentials: {
        AccessKeyId: `ASIAFAKE${String(this.n).padStart(12, '0')}`,
        SecretAccessKey: `secret-${this.n}`,
        SessionToken: `token-${this.n}`,
        Expiration: new Date(this.clock.now + this.lifetimeS * 1000),
      },
    };
  }
}

function setup(
  script: Answer[] = [],
  lifetimeS = 3600,
  extra: { retryBudgetMs?: number; onCall?: (seconds: number, errorCode?: string) => void } = {},
) {
  const clock = { now: Date.parse('2026-11-26T10:00:00Z') };
  const sts = new FakeSts(clock, script, lifetimeS);
  const sleeps: number[] = [];
  const broker = new StsCredentialBroker({
    region: 'us-east-1',
    client: sts,
    now: () => clock.now,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.now += ms;
    },
    random: () => 0.5,
    ...extra,
  });
  return { clock, sts, sleeps, broker };
}

async function rejection(promise: Promise<unknown>): Promise<CoveError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CoveError);
  return error as CoveError;
}

describe('STS session names', () => {
  it.each([
    ['alice', 'alice'],
    ['first.last@example.com', 'first.last@example.com'],
    ['a+b=c,d_e-f', 'a+b=c,d_e-f'],
    ['jörg', 'j-rg'],
    ['名前', '--'],
    ['x', 'x-'],
    ['😀', '--'],
    ['a'.repeat(70), 'a'.repeat(64)],
    ['user name:aws', 'user-name-aws'],
  ])('R01 %s → %s', (username, expected) => {
    expect(stsSessionName(username)).toBe(expected);
  });

  it('R01 groups tag: joined with /, mapped, whole names dropped past 256 characters', () => {
    expect(stsGroupsTag([])).toBe('');
    expect(stsGroupsTag(['Developers', 'On call; EU'])).toBe('Developers/On call- EU');
    const many = Array.from({ length: 30 }, (_, i) => `group-number-${i}`);
    const tag = stsGroupsTag(many);
    expect(tag.length).toBeLessThanOrEqual(256);
    expect(tag.split('/').every((g) => many.includes(g))).toBe(true);
    expect(tag.split('/').length).toBeGreaterThan(10);
    expect(stsGroupsTag(['g'.repeat(300), 'other'])).toBe('g'.repeat(256));
  });
});

describe('StsCredentialBroker', () => {
  it('R01 sends the session name, source identity, duration, policy and tags', async () => {
    const { sts, broker } = setup();
    await broker.issue({ ...request, username: 'jörg', sessionPolicy: '{"Version":"2012-10-17"}' });
    expect(sts.calls).toEqual([
      {
        RoleArn: request.roleArn,
        RoleSessionName: 'j-rg',
        SourceIdentity: 'j-rg',
        DurationSeconds: 28800,
        Policy: '{"Version":"2012-10-17"}',
        Tags: [
          { Key: 'cove:user', Value: 'jörg' },
          { Key: 'cove:groups', Value: 'Developers' },
        ],
      },
    ]);
  });

  it('R01 F06 serves from the cache until refreshBeforeS before expiry, then fetches again', async () => {
    const { clock, sts, broker } = setup();
    const first = await broker.issue(request);
    clock.now += (3600 - 301) * 1000;
    expect(await broker.issue(request)).toBe(first);
    expect(sts.calls).toHaveLength(1);
    clock.now += 2000;
    const second = await broker.issue(request);
    expect(second.credentials.accessKeyId).not.toBe(first.credentials.accessKeyId);
    expect(sts.calls).toHaveLength(2);
  });

  it('F06 serves cached credentials while STS fails, and a 503 once the cache is past its refresh margin', async () => {
    const failing = Array.from({ length: 4 }, () => ({ name: 'InternalFailure', status: 500 }));
    const { clock, sts, broker } = setup(['ok', ...failing, ...failing]);
    const first = await broker.issue(request);
    // STS is failing from here on: within the cache window nobody notices.
    clock.now += 30 * 60 * 1000;
    expect(await broker.issue(request)).toBe(first);
    clock.now += (30 * 60 - 301) * 1000;
    expect(await broker.issue(request)).toBe(first);
    expect(sts.calls).toHaveLength(1);
    // Less than refreshBeforeS (300 s) left: the cache may not be handed out, STS still fails.
    clock.now += 2000;
    const error = await rejection(broker.issue(request));
    expect(sts.calls).toHaveLength(5);
    expect(error.statusCode).toBe(503);
    expect(error.code).toBe('COVE_ERR_CREDENTIALS_UNAVAILABLE');
    expect(`${error.message} ${JSON.stringify(error)}`).not.toContain(first.credentials.secretAccessKey);
    // Not cached as a failure, and not the stale credentials either: the next call asks STS again.
    expect((await rejection(broker.issue(request))).statusCode).toBe(503);
    expect(sts.calls).toHaveLength(9);
    // STS is back: new credentials, no restart.
    const recovered = await broker.issue(request);
    expect(recovered.credentials.accessKeyId).not.toBe(first.credentials.accessKeyId);
  });

  it('R01 minRemainingS: a caller that needs 15 min more gets new credentials earlier', async () => {
    const { clock, sts, broker } = setup();
    const first = await broker.issue(request);
    clock.now += 50 * 60 * 1000;
    expect(await broker.issue(request)).toBe(first);
    const fresh = await broker.issue(request, { minRemainingS: 16 * 60 });
    expect(fresh.credentials.accessKeyId).not.toBe(first.credentials.accessKeyId);
    expect(sts.calls).toHaveLength(2);
  });

  it('R01 keys the cache by user: another user with the same assignment gets their own', async () => {
    const { sts, broker } = setup();
    const alice = await broker.issue(request);
    const bob = await broker.issue({ ...request, userId: 'u-bob', username: 'bob' });
    expect(bob.credentials.accessKeyId).not.toBe(alice.credentials.accessKeyId);
    expect(sts.calls.map((c) => c.RoleSessionName)).toEqual(['alice', 'bob']);
    expect(await broker.issue(request)).toBe(alice);
  });

  it('a changed permission set (policy) is a cache miss', async () => {
    const { sts, broker } = setup();
    await broker.issue(request);
    await broker.issue({ ...request, sessionPolicy: '{"Statement":[]}' });
    expect(sts.calls).toHaveLength(2);
    expect(sts.calls[1]?.Policy).toBe('{"Statement":[]}');
  });

  it('single-flight: 10 concurrent calls make one STS request and share its answer', async () => {
    const { sts, broker } = setup();
    let release: () => void = () => {};
    sts.gate = new Promise((resolve) => (release = resolve));
    const calls = Array.from({ length: 10 }, () => broker.issue(request));
    release();
    const results = await Promise.all(calls);
    expect(sts.calls).toHaveLength(1);
    expect(new Set(results.map((r) => r.credentials.accessKeyId)).size).toBe(1);
  });

  it('A06 forget drops cached credentials and keeps an in-flight answer out of the cache', async () => {
    const { sts, broker } = setup();
    await broker.issue(request);
    broker.forget(['u-alice']);
    let release: () => void = () => {};
    sts.gate = new Promise((resolve) => (release = resolve));
    const pending = broker.issue(request);
    broker.forget(['u-alice']);
    release();
    await pending;
    sts.gate = Promise.resolve();
    await broker.issue(request);
    expect(sts.calls).toHaveLength(3);
  });

  it('F06 Throttling is retried with backoff and then succeeds', async () => {
    const { sts, sleeps, broker } = setup([
      { name: 'Throttling', status: 400, message: 'Rate exceeded' },
      { name: 'ThrottlingException', status: 400 },
    ]);
    const issued = await broker.issue(request);
    expect(issued.credentials.accessKeyId).toMatch(/^ASIA/);
    expect(sts.calls).toHaveLength(3);
    // Full jitter with random() = 0.5: half of 200 ms, then half of 400 ms.
    expect(sleeps).toEqual([100, 200]);
  });

  it('reports every STS request to onCall (the metrics): its time, and its code when it failed', async () => {
    const calls: { seconds: number; errorCode: string | undefined }[] = [];
    const { broker } = setup(
      [
        { name: 'Throttling', status: 400 },
        { name: 'AccessDenied', status: 403 },
      ],
      3600,
      { onCall: (seconds, errorCode) => calls.push({ seconds, errorCode }) },
    );
    await expect(broker.issue(request)).rejects.toBeInstanceOf(CoveError);
    // A cache hit asks no one: only the next real request is reported.
    const other = { ...request, userId: 'u-bob', username: 'bob' };
    await broker.issue(other);
    await broker.issue(other);
    expect(calls.map((c) => c.errorCode)).toEqual(['Throttling', 'AccessDenied', undefined]);
    for (const { seconds } of calls) expect(seconds).toBeGreaterThanOrEqual(0);
  });

  it('F06 5xx and network errors are retried; after the last attempt the user reads a 503', async () => {
    const { sts, broker } = setup([
      { name: 'InternalFailure', status: 500 },
      { name: 'ECONNREFUSED' },
      { name: 'ServiceUnavailable', status: 503 },
      { name: 'TimeoutError' },
      'ok',
    ]);
    const error = await rejection(broker.issue(request));
    expect(sts.calls).toHaveLength(4);
    expect(error.statusCode).toBe(503);
    expect(error.code).toBe('COVE_ERR_CREDENTIALS_UNAVAILABLE');
    expect(error.message).toBe(
      'AWS credentials are unavailable right now (STS did not answer). Your shell still works; try again in a minute.',
    );
  });

  it('F06 no answer is a blip within 10 min of STS’s last answer, a missing setup after that', async () => {
    const refused = Array.from({ length: 4 }, () => ({ name: 'ECONNREFUSED' }));
    const { clock, broker } = setup(['ok', ...refused, ...refused]);
    expect(broker.health()).toEqual({
      status: 'unknown',
      endpoint: 'AWS STS for us-east-1 (https://sts.us-east-1.amazonaws.com)',
    });
    await broker.issue(request);
    expect(broker.health().status).toBe('ok');
    const other = { ...request, userId: 'u-other', username: 'other' };
    const blip = await rejection(broker.issue(other));
    expect(blip.code).toBe('COVE_ERR_CREDENTIALS_UNAVAILABLE');
    clock.now += 10 * 60_000;
    const lasting = await rejection(broker.issue({ ...other, userId: 'u-third' }));
    expect(lasting.code).toBe('COVE_ERR_CREDENTIALS_NOT_CONFIGURED');
    expect(lasting.message).not.toMatch(/try again/i);
    expect(broker.health()).toMatchObject({ status: 'unreachable', lastError: 'ECONNREFUSED' });
  });

  it('F06 STS refusing the server’s own keys is a missing setup, named for the admin', async () => {
    const { broker } = setup([{ name: 'InvalidClientTokenId', status: 403 }]);
    const error = await rejection(broker.issue(request));
    expect(error.code).toBe('COVE_ERR_CREDENTIALS_NOT_CONFIGURED');
    expect(broker.health()).toMatchObject({ status: 'no-identity', lastError: 'InvalidClientTokenId' });
    expect(broker.health().action).toMatch(
      /refuses this server's own AWS credentials \(InvalidClientTokenId\)/,
    );
  });

  it('F06 the retry budget stops retries early even with attempts left', async () => {
    const { sts, broker } = setup(
      Array.from({ length: 4 }, () => ({ name: 'Throttling', status: 400 })),
      3600,
      { retryBudgetMs: 250 },
    );
    const error = await rejection(broker.issue(request));
    expect(error.statusCode).toBe(503);
    expect(sts.calls.length).toBeLessThan(4);
  });

  it('F06 AccessDenied is not retried and names only the role name, account and AWS code', async () => {
    const { sts, broker } = setup([
      {
        name: 'AccessDenied',
        status: 403,
        message:
          'User: arn:aws:iam::999988887777:user/cove-server is not authorized to perform: sts:AssumeRole',
      },
    ]);
    const error = await rejection(broker.issue(request));
    expect(sts.calls).toHaveLength(1);
    expect(error.statusCode).toBe(403);
    expect(error.code).toBe('COVE_ERR_CREDENTIALS_ASSUME_ROLE');
    expect(error.message).toMatch(
      /^could not assume role Cove-Admin in account 111122223333: AccessDenied\b/,
    );
    expect(JSON.stringify(error.toJSON())).not.toContain('arn:');
  });

  it('R01 a refused duration is asked again for 1 h once, with a notice', async () => {
    const { sts, broker } = setup([
      {
        name: 'ValidationError',
        status: 400,
        message: 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
      },
    ]);
    const issued = await broker.issue(request);
    expect(sts.calls.map((c) => c.DurationSeconds)).toEqual([28800, 3600]);
    expect(issued.notice).toBe(
      'The role Cove-Admin in account 111122223333 allows at most 1 h: these credentials last 1 h, not 8 h.',
    );
    expect((await broker.issue(request)).notice).toBe(issued.notice);
    expect(sts.calls).toHaveLength(2);
  });

  it('F06 a missing server identity (no credentials in the default chain) is a 503, not retried', async () => {
    const { sts, broker } = setup([
      { name: 'CredentialsProviderError', message: 'Could not load credentials' },
    ]);
    const error = await rejection(broker.issue(request));
    expect(error.statusCode).toBe(503);
    expect(sts.calls).toHaveLength(1);
  });
});
