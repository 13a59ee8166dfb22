/**
 * An install that cannot use STS: the user reads that credentials are not set up here (no retry
 * hint), and /readyz tells the administrator which endpoint does not answer and what to
 * configure. A transient throttle stays "try again". STS here is a loopback port with nothing
 * listening, or the local STS; never AWS.
 */
import { freeLoopbackPort } from '../../../helpers/free-port.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDirectory } from '../../../../server/directory/seed.js';
import { CoveError } from '../../../../server/errors.js';
import type { CredentialRequest } from '../../../../server/credentials/credential-broker.js';
import type { ReadyzResponse } from '../../../../server/protocol/api.js';
import { createTestApp, type TestApp } from '../../../helpers/test-app.js';
import { localStsBroker, startLocalSts, type LocalSts } from '../../../helpers/local-sts.js';
import { call, createUser, signIn } from '../directory/admin-client.js';

const prod = '111122223333';
const notSetUp =
  'AWS credentials are not set up on this Cove server (it cannot get any from AWS STS). Your shell works without AWS access; tell your administrator.';

async function rejection(promise: Promise<unknown>): Promise<CoveError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CoveError);
  return error as CoveError;
}

const alice: CredentialRequest = {
  userId: 'u-alice',
  username: 'alice',
  groups: [],
  accountId: prod,
  accountName: 'prod',
  permissionSet: 'ReadOnlyAccess',
  roleArn: `arn:aws:iam::${prod}:role/Cove-ReadOnlyAccess`,
  sessionDurationS: 3600,
  sessionPolicy: null,
};

describe('STS that does not answer (sts.endpoint: a closed loopback port)', () => {
  let t: TestApp;
  let endpoint: string;
  let cookie: string;

  beforeAll(async () => {
    endpoint = `http://127.0.0.1:${await freeLoopbackPort()}`;
    t = await createTestApp({
      sts: { endpoint, requestTimeoutMs: 500, maxAttempts: 2, retryBudgetMs: 1000 },
    });
    await seedDirectory(t.app);
    await t.app.directory.createAccount({ accountId: prod, name: 'prod' });
    const userId = await createUser(t, 'alice');
    await t.app.directory.createAssignment({
      principalType: 'user',
      principalId: userId,
      accountId: prod,
      permissionSet: 'ReadOnlyAccess',
    });
    cookie = await signIn(t, userId);
  });
  afterAll(async () => {
    await t?.close();
  });

  const readyz = async () => {
    const response = await t.app.inject({ url: '/readyz' });
    return { statusCode: response.statusCode, body: response.json<ReadyzResponse>() };
  };

  it('/readyz names the endpoint and reports nothing seen before anyone asked', async () => {
    const { statusCode, body } = await readyz();
    expect(statusCode).toBe(200);
    expect(body.sts).toEqual({ status: 'unknown', endpoint });
  });

  it('command line access: credentials are not set up here, with no retry hint', async () => {
    const response = await call(t, 'POST', '/api/credentials', {
      cookie,
      body: { accountId: prod, permissionSet: 'ReadOnlyAccess' },
    });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ code: 'COVE_ERR_CREDENTIALS_NOT_CONFIGURED', message: notSetUp });
    expect(response.body).not.toMatch(/try again/i);
    expect(response.body).not.toContain(endpoint);
  });

  it('/readyz then says STS is unreachable, since when, and what to configure; still ready', async () => {
    const { statusCode, body } = await readyz();
    // Shells without AWS still work, and another instance would not reach STS either.
    expect(statusCode).toBe(200);
    expect(body.status).toBe('ready');
    expect(body.sts).toMatchObject({ status: 'unreachable', endpoint, lastError: 'ECONNREFUSED' });
    expect(Date.parse(body.sts.since ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect(body.sts.action).toBe(
      `Cove gets no answer from ${endpoint} (ECONNREFUSED). Let this server reach it (firewall, proxy, DNS), ` +
        'or set sts.endpoint (COVE_STS_ENDPOINT) to an STS endpoint it can reach, such as a VPC endpoint.',
    );
  });

  it('the log tells the administrator the code, not the user', () => {
    expect(t.logs.join('')).toContain('COVE_ERR_CREDENTIALS_NOT_CONFIGURED');
  });
});

describe('STS health as the broker sees it (local STS)', () => {
  let sts: LocalSts;
  beforeAll(async () => {
    sts = await startLocalSts();
  });
  afterAll(async () => {
    await sts?.close();
  });

  it('no identity of the server’s own: not set up here, no STS request, and the admin learns how to give one', async () => {
    const before = sts.requests.length;
    const broker = localStsBroker(sts, {
      credentials: () =>
        Promise.reject(
          Object.assign(new Error('Could not load credentials from any providers'), {
            name: 'CredentialsProviderError',
          }),
        ),
    });
    const error = await rejection(broker.issue(alice));
    expect(error.toJSON()).toEqual({ code: 'COVE_ERR_CREDENTIALS_NOT_CONFIGURED', message: notSetUp });
    expect(sts.requests.length).toBe(before);
    expect(broker.health()).toMatchObject({
      status: 'no-identity',
      endpoint: sts.endpoint,
      lastError: 'CredentialsProviderError',
    });
    expect(broker.health().action).toMatch(
      /^Cove has no AWS credentials of its own to call STS with\. .*instance or task role/,
    );
  });

  it('a throttling STS is transient: try again, "failing"; then ok; a later blip is still "try again"', async () => {
    const broker = localStsBroker(sts, { requestTimeoutMs: 200, retryBudgetMs: 600 });
    sts.throttleNext(10);
    try {
      const throttled = await rejection(broker.issue(alice));
      expect(throttled.code).toBe('COVE_ERR_CREDENTIALS_UNAVAILABLE');
      expect(throttled.message).toMatch(/try again in a minute/);
      expect(broker.health()).toMatchObject({ status: 'failing', lastError: 'Throttling' });
      expect(broker.health().action).toMatch(
        /answers with errors \(Throttling\); users are asked to try again/,
      );
    } finally {
      sts.throttleNext(0);
    }

    await broker.issue(alice);
    const ok = broker.health();
    expect(ok.status).toBe('ok');
    expect(ok.action).toBeUndefined();
    expect(ok.lastError).toBeUndefined();

    // STS answered a moment ago: no answer now is a blip, not a missing setup.
    sts.hangNext(10);
    try {
      const blip = await rejection(broker.issue({ ...alice, userId: 'u-bob', username: 'bob' }));
      expect(blip.code).toBe('COVE_ERR_CREDENTIALS_UNAVAILABLE');
      expect(broker.health().status).toBe('unreachable');
    } finally {
      sts.hangNext(0);
    }
  });
});
