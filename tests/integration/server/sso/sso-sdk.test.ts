/**
 * `aws sso login` against Cove with the real AWS SDK for JavaScript v3: the SSO OIDC and SSO
 * clients, the SSO token provider (`fromSso`) and credential provider (`fromSSO`), all pointed
 * at Cove only through the `~/.aws/config` block the portal shows (its `services` section), in a
 * temp HOME. Cove listens on loopback; role credentials come from the local STS (real wire
 * protocol). People's approvals go through Cove's own page API with a session cookie.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateTokenCommand,
  RegisterClientCommand,
  SSOOIDCClient,
  StartDeviceAuthorizationCommand,
} from '@aws-sdk/client-sso-oidc';
import {
  GetRoleCredentialsCommand,
  ListAccountRolesCommand,
  ListAccountsCommand,
  LogoutCommand,
  SSOClient,
} from '@aws-sdk/client-sso';
import { fromSSO } from '@aws-sdk/credential-provider-sso';
import { fromSso } from '@aws-sdk/token-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { seedDirectory } from '../../../../server/directory/seed.js';
import { createTestApp, type TestApp } from '../../../helpers/test-app.js';
import { freeLoopbackPort } from '../../../helpers/free-port.js';
import { localStsBroker, startLocalSts, type LocalSts } from '../../../helpers/local-sts.js';
import { call, createUser, signIn } from '../directory/admin-client.js';

const prod = '111122223333';
const dev = '444455556666';
const deviceGrant = 'urn:ietf:params:oauth:grant-type:device_code';
let sts: LocalSts;
let t: TestApp;
let publicUrl: string;
let home: string;
let alice: string;
let aliceCookie: string;
let bobCookie: string;
/** Added to the server's clock, to expire requests without waiting. */
let clockOffsetMs = 0;
const savedEnv = {
  HOME: process.env.HOME,
  AWS_CONFIG_FILE: process.env.AWS_CONFIG_FILE,
  AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
  AWS_PROFILE: process.env.AWS_PROFILE,
};

/**
 * The SDK's own HTTP handler, refusing any host but loopback before it resolves a name: when the
 * config file failed to point a client at Cove, the test fails instead of calling AWS.
 */
class LoopbackOnlyHandler extends NodeHttpHandler {
  override async handle(...args: Parameters<NodeHttpHandler['handle']>) {
    const [request] = args;
    if (request.hostname !== '127.0.0.1') throw new Error(`refused a request to ${request.hostname}`);
    return super.handle(...args);
  }
}
const requestHandler = new LoopbackOnlyHandler();

/**
 * The profile as a user selects it. The SDK reads a `services` section only from the profile in
 * AWS_PROFILE (or `default`), not from a client's `profile` option (seen in @smithy/core 3.x).
 */
const profile = 'prod-readonlyaccess';
const clientConfig = { region: 'eu-west-1', maxAttempts: 1, requestHandler };
const oidcClient = () => new SSOOIDCClient(clientConfig);
const ssoClient = () => new SSOClient(clientConfig);

/** The error an SDK call rejected with (fails the test when it resolved). */
async function awsError(work: Promise<unknown>) {
  try {
    await work;
  } catch (error) {
    return error as Error & { $metadata: { httpStatusCode?: number }; error?: string };
  }
  throw new Error('expected the call to fail');
}

async function register(name = 'botocore-client-cove', grantTypes = [deviceGrant, 'refresh_token']) {
  return oidcClient().send(
    new RegisterClientCommand({
      clientName: name,
      clientType: 'public',
      scopes: ['sso:account:access'],
      grantTypes,
      issuerUrl: `${publicUrl}/start`,
    }),
  );
}

async function startDevice(client: { clientId?: string; clientSecret?: string }) {
  return oidcClient().send(
    new StartDeviceAuthorizationCommand({
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      startUrl: `${publicUrl}/start`,
    }),
  );
}

/** A browser call on Cove's own origin (the CSRF rules want it). */
const browser = (method: 'GET' | 'POST', url: string, cookie: string, body?: unknown) =>
  call(t, method, url, { cookie, headers: { origin: publicUrl }, ...(body === undefined ? {} : { body }) });

const answer = (cookie: string, userCode: string, allow: boolean) =>
  browser('POST', `/api/sso/requests/${userCode}/decision`, cookie, { allow });

/** Register, device authorization, approval as `cookie`'s user, token: what `aws sso login` does. */
async function login(cookie: string) {
  const client = await register();
  const device = await startDevice(client);
  expect((await answer(cookie, device.userCode ?? '', true)).statusCode).toBe(200);
  const token = await oidcClient().send(
    new CreateTokenCommand({
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      grantType: deviceGrant,
      deviceCode: device.deviceCode,
    }),
  );
  return { client, token };
}

/** The cache file the AWS CLI writes after `aws sso login --sso-session cove`. */
function writeCache(
  client: { clientId?: string; clientSecret?: string; clientSecretExpiresAt?: number },
  token: { accessToken?: string; refreshToken?: string },
  expiresAt: Date,
) {
  const dir = join(home, '.aws', 'sso', 'cache');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${createHash('sha1').update('cove').digest('hex')}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      startUrl: `${publicUrl}/start`,
      region: 'eu-west-1',
      accessToken: token.accessToken,
      expiresAt: expiresAt.toISOString(),
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      registrationExpiresAt: new Date((client.clientSecretExpiresAt ?? 0) * 1000).toISOString(),
      refreshToken: token.refreshToken,
    }),
  );
  return file;
}

beforeAll(async () => {
  sts = await startLocalSts();
  const port = await freeLoopbackPort();
  publicUrl = `http://127.0.0.1:${port}`;
  t = await createTestApp(
    {
      publicUrl,
      port,
      host: '127.0.0.1',
      regions: [{ id: 'eu-west-1', name: 'Europe (Ireland)' }],
      sso: { pollIntervalS: 1 },
    },
    { credentialBroker: localStsBroker(sts), now: () => Date.now() + clockOffsetMs },
  );
  await t.app.listen({ port, host: '127.0.0.1' });
  await seedDirectory(t.app);
  const { directory } = t.app;
  await directory.createAccount({ accountId: prod, name: 'prod' });
  await directory.createAccount({ accountId: dev, name: 'dev' });
  alice = await createUser(t, 'alice');
  const bob = await createUser(t, 'bob');
  await directory.createAssignment({
    principalType: 'user',
    principalId: alice,
    accountId: prod,
    permissionSet: 'ReadOnlyAccess',
  });
  await directory.createAssignment({
    principalType: 'user',
    principalId: alice,
    accountId: dev,
    permissionSet: 'PowerUserAccess',
  });
  aliceCookie = await signIn(t, alice);
  bobCookie = await signIn(t, bob);

  // The block the portal shows alice, as she would paste it into ~/.aws/config.
  const shown = await browser('GET', '/api/sso/laptop-config', aliceCookie);
  expect(shown.statusCode).toBe(200);
  home = mkdtempSync(join(tmpdir(), 'cove-sso-home-'));
  mkdirSync(join(home, '.aws'));
  writeFileSync(join(home, '.aws', 'config'), shown.json<{ config: string }>().config);
  // Only the config file may point the SDK at Cove (tests/setup points AWS_ENDPOINT_URL, which
  // would win over the file, at a closed port); STS and S3 keep their own closed-port variables.
  process.env.HOME = home;
  delete process.env.AWS_CONFIG_FILE;
  delete process.env.AWS_ENDPOINT_URL;
  process.env.AWS_PROFILE = profile;
});

afterAll(async () => {
  for (const [key, value] of Object.entries(savedEnv))
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  await t.close();
  await sts.close();
  rmSync(home, { recursive: true, force: true });
});

describe('aws sso login against Cove with the real SDK', () => {
  it('signs in by device code, lists accounts and roles, gets role credentials, refreshes and logs out', async () => {
    const client = await register();
    expect(client.clientId).toBeTruthy();
    expect(client.clientSecretExpiresAt).toBeGreaterThan(Date.now() / 1000);
    const device = await startDevice(client);
    expect(device.userCode).toMatch(/^[BCDFGHJKMNPQRTVWXY]{4}-[BCDFGHJKMNPQRTVWXY]{4}$/);
    expect(device.verificationUriComplete).toBe(`${publicUrl}/device?user_code=${device.userCode}`);
    expect(device.interval).toBe(1);
    expect(device.expiresIn).toBe(600);

    const poll = () =>
      oidcClient().send(
        new CreateTokenCommand({
          clientId: client.clientId,
          clientSecret: client.clientSecret,
          grantType: deviceGrant,
          deviceCode: device.deviceCode,
        }),
      );
    const pending = await awsError(poll());
    expect(pending.name).toBe('AuthorizationPendingException');
    expect(pending.error).toBe('authorization_pending');
    expect(pending.$metadata.httpStatusCode).toBe(400);
    const tooFast = await awsError(poll());
    expect(tooFast.name).toBe('SlowDownException');
    expect(tooFast.error).toBe('slow_down');

    // The page shows who asks; alice allows it.
    const shown = await browser('GET', `/api/sso/requests/${device.userCode}`, aliceCookie);
    expect(shown.json()).toMatchObject({
      userCode: device.userCode,
      kind: 'device',
      clientName: 'botocore-client-cove',
    });
    expect((await answer(aliceCookie, device.userCode ?? '', true)).json()).toEqual({ status: 'approved' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const token = await poll();
    expect(token.tokenType).toBe('Bearer');
    expect(token.expiresIn).toBe(3600);
    expect(token.refreshToken).toBeTruthy();
    // Redeemed once.
    expect((await awsError(poll())).name).toBe('InvalidGrantException');

    const sso = ssoClient();
    const first = await sso.send(new ListAccountsCommand({ accessToken: token.accessToken, maxResults: 1 }));
    expect(first.accountList).toEqual([{ accountId: prod, accountName: 'prod' }]);
    const second = await sso.send(
      new ListAccountsCommand({ accessToken: token.accessToken, maxResults: 1, nextToken: first.nextToken }),
    );
    expect(second.accountList).toEqual([{ accountId: dev, accountName: 'dev' }]);
    expect(second.nextToken).toBeUndefined();
    const roles = await sso.send(
      new ListAccountRolesCommand({ accessToken: token.accessToken, accountId: prod }),
    );
    expect(roles.roleList).toEqual([{ roleName: 'ReadOnlyAccess', accountId: prod }]);

    // fromSSO reads the profile, the sso-session and the CLI's cache, and calls Cove's portal.
    const cache = writeCache(client, token, new Date(Date.now() + 3600_000));
    const credentials = await fromSSO({ profile, clientConfig })();
    const issued = sts.issued.get(credentials.accessKeyId);
    expect(issued?.roleArn).toBe(`arn:aws:iam::${prod}:role/Cove-ReadOnlyAccess`);
    expect(credentials.expiration?.getTime()).toBe(issued?.expiration.getTime());
    const audit = await t.store.audit.list({ action: 'credentials.issue' });
    expect(audit[0]).toMatchObject({ actorId: alice, details: { purpose: 'sso', accountId: prod } });

    // Close to expiry: the token provider refreshes through Cove's CreateToken and rewrites the cache.
    writeCache(client, token, new Date(Date.now() + 60_000));
    const refreshed = await fromSso({ profile, clientConfig })();
    expect(refreshed.token).not.toBe(token.accessToken);
    const rewritten = JSON.parse(readFileSync(cache, 'utf8')) as {
      accessToken: string;
      refreshToken: string;
    };
    expect(rewritten.accessToken).toBe(refreshed.token);
    expect(rewritten.refreshToken).not.toBe(token.refreshToken);
    // The old refresh token was used up by the refresh.
    const reused = await awsError(
      oidcClient().send(
        new CreateTokenCommand({
          clientId: client.clientId,
          clientSecret: client.clientSecret,
          grantType: 'refresh_token',
          refreshToken: token.refreshToken,
        }),
      ),
    );
    expect(reused.name).toBe('InvalidGrantException');
    const again = await fromSSO({ profile: 'dev-poweruseraccess', clientConfig })();
    expect(sts.issued.get(again.accessKeyId)?.roleArn).toBe(`arn:aws:iam::${dev}:role/Cove-PowerUserAccess`);

    // Logout ends the new access token and its refresh token.
    await sso.send(new LogoutCommand({ accessToken: refreshed.token }));
    const after = await awsError(sso.send(new ListAccountsCommand({ accessToken: refreshed.token })));
    expect(after.name).toBe('UnauthorizedException');
    expect(after.$metadata.httpStatusCode).toBe(401);
    const refreshAfter = await awsError(
      oidcClient().send(
        new CreateTokenCommand({
          clientId: client.clientId,
          clientSecret: client.clientSecret,
          grantType: 'refresh_token',
          refreshToken: rewritten.refreshToken,
        }),
      ),
    );
    expect(refreshAfter.name).toBe('InvalidGrantException');
  });

  it('signs in by authorization code with PKCE to a loopback address', async () => {
    const client = await register('botocore-client-cove', ['authorization_code', 'refresh_token']);
    const verifier = 'v'.repeat(20) + 'erifier-with-enough-entropy-0123456789';
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const redirectUri = 'http://127.0.0.1:49152/oauth/callback';
    const authorize = await fetch(
      `${publicUrl}/aws/oidc/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: client.clientId ?? '',
        redirect_uri: redirectUri,
        state: 'st-123',
        code_challenge_method: 'S256',
        code_challenge: challenge,
        scopes: 'sso:account:access',
      }).toString()}`,
      { redirect: 'manual' },
    );
    expect(authorize.status).toBe(302);
    const page = authorize.headers.get('location') ?? '';
    const userCode = new URL(page, publicUrl).searchParams.get('user_code') ?? '';
    expect(page).toBe(`/device?user_code=${userCode}`);
    const decided = (await answer(aliceCookie, userCode, true)).json<{ redirectTo: string }>();
    const back = new URL(decided.redirectTo);
    expect(`${back.origin}${back.pathname}`).toBe(redirectUri);
    expect(back.searchParams.get('state')).toBe('st-123');
    const code = back.searchParams.get('code') ?? '';
    const exchange = (codeVerifier: string, uri = redirectUri) =>
      oidcClient().send(
        new CreateTokenCommand({
          clientId: client.clientId,
          clientSecret: client.clientSecret,
          grantType: 'authorization_code',
          code,
          codeVerifier,
          redirectUri: uri,
        }),
      );
    // A wrong verifier uses the code up: a stolen code is worth one guess.
    expect((await awsError(exchange(`${verifier}x`))).name).toBe('InvalidGrantException');
    expect((await awsError(exchange(verifier))).name).toBe('InvalidGrantException');

    // Again, right this time.
    const retry = await fetch(
      `${publicUrl}/aws/oidc/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: client.clientId ?? '',
        redirect_uri: redirectUri,
        state: 'st-456',
        code_challenge_method: 'S256',
        code_challenge: challenge,
      }).toString()}`,
      { redirect: 'manual' },
    );
    const code2 = new URL(
      (
        await answer(
          aliceCookie,
          new URL(retry.headers.get('location') ?? '', publicUrl).searchParams.get('user_code') ?? '',
          true,
        )
      ).json<{ redirectTo: string }>().redirectTo,
    ).searchParams.get('code');
    const token = await oidcClient().send(
      new CreateTokenCommand({
        clientId: client.clientId,
        clientSecret: client.clientSecret,
        grantType: 'authorization_code',
        code: code2 ?? '',
        codeVerifier: verifier,
        redirectUri,
      }),
    );
    const accounts = await ssoClient().send(new ListAccountsCommand({ accessToken: token.accessToken }));
    expect(accounts.accountList?.map((a) => a.accountId)).toEqual([prod, dev]);

    // Denied: the browser goes back to the command line with OAuth's error and the state.
    const third = await fetch(
      `${publicUrl}/aws/oidc/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: client.clientId ?? '',
        redirect_uri: redirectUri,
        state: 'st-789',
        code_challenge_method: 'S256',
        code_challenge: challenge,
      }).toString()}`,
      { redirect: 'manual' },
    );
    const deniedCode =
      new URL(third.headers.get('location') ?? '', publicUrl).searchParams.get('user_code') ?? '';
    const denied = new URL(
      (await answer(aliceCookie, deniedCode, false)).json<{ redirectTo: string }>().redirectTo,
    );
    expect(Object.fromEntries(denied.searchParams)).toEqual({
      error: 'access_denied',
      error_description: 'The sign-in request was denied in Cove.',
      state: 'st-789',
    });
    // The start URL opens the portal.
    const start = await fetch(`${publicUrl}/start`, { redirect: 'manual' });
    expect([start.status, start.headers.get('location')]).toEqual([302, '/']);
  });
});

describe('bad input gets the exact AWS error', () => {
  it('refuses a wrong client secret with InvalidClientException (401)', async () => {
    const client = await register();
    const error = await awsError(startDevice({ clientId: client.clientId, clientSecret: 'wrong' }));
    expect(error.name).toBe('InvalidClientException');
    expect(error.error).toBe('invalid_client');
    expect(error.$metadata.httpStatusCode).toBe(401);
  });

  it('answers a wrong device code with InvalidGrantException and an expired one with ExpiredTokenException', async () => {
    const client = await register();
    const create = (deviceCode: string) =>
      oidcClient().send(
        new CreateTokenCommand({
          clientId: client.clientId,
          clientSecret: client.clientSecret,
          grantType: deviceGrant,
          deviceCode,
        }),
      );
    const wrong = await awsError(create('not-a-device-code'));
    expect(wrong.name).toBe('InvalidGrantException');
    expect(wrong.error).toBe('invalid_grant');
    const device = await startDevice(client);
    // Another client's device code is not this client's.
    const other = await register();
    const stolen = await awsError(
      oidcClient().send(
        new CreateTokenCommand({
          clientId: other.clientId,
          clientSecret: other.clientSecret,
          grantType: deviceGrant,
          deviceCode: device.deviceCode,
        }),
      ),
    );
    expect(stolen.name).toBe('InvalidGrantException');
    clockOffsetMs = 601_000;
    try {
      const expired = await awsError(create(device.deviceCode ?? ''));
      expect(expired.name).toBe('ExpiredTokenException');
      expect(expired.error).toBe('expired_token');
      // The page no longer offers it either.
      const late = await answer(aliceCookie, device.userCode ?? '', true);
      expect(late.statusCode).toBe(404);
      expect(late.json()).toMatchObject({ code: 'COVE_ERR_SSO_REQUEST_UNKNOWN' });
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('tells the CLI a denied request with AccessDeniedException', async () => {
    const client = await register();
    const device = await startDevice(client);
    expect((await answer(aliceCookie, device.userCode ?? '', false)).json()).toEqual({ status: 'denied' });
    const denied = await awsError(
      oidcClient().send(
        new CreateTokenCommand({
          clientId: client.clientId,
          clientSecret: client.clientSecret,
          grantType: deviceGrant,
          deviceCode: device.deviceCode,
        }),
      ),
    );
    expect(denied.name).toBe('AccessDeniedException');
    expect(denied.error).toBe('access_denied');
  });

  it("refuses another client's refresh token, and keeps it working for its owner", async () => {
    const { client, token } = await login(aliceCookie);
    const other = await register();
    const refresh = (c: { clientId?: string; clientSecret?: string }) =>
      oidcClient().send(
        new CreateTokenCommand({
          clientId: c.clientId,
          clientSecret: c.clientSecret,
          grantType: 'refresh_token',
          refreshToken: token.refreshToken,
        }),
      );
    const error = await awsError(refresh(other));
    expect(error.name).toBe('InvalidGrantException');
    expect(error.$metadata.httpStatusCode).toBe(400);
    expect((await refresh(client)).accessToken).toBeTruthy();
  });

  it('answers a role that is not assigned, or no longer is, with ForbiddenException (403)', async () => {
    const { token } = await login(aliceCookie);
    const sso = ssoClient();
    const get = (accountId: string, roleName: string) =>
      sso.send(new GetRoleCredentialsCommand({ accessToken: token.accessToken, accountId, roleName }));
    const notAssigned = await awsError(get(prod, 'AdministratorAccess'));
    expect(notAssigned.name).toBe('ForbiddenException');
    expect(notAssigned.message).toBe('No access');
    expect(notAssigned.$metadata.httpStatusCode).toBe(403);
    expect((await awsError(get('999999999999', 'ReadOnlyAccess'))).name).toBe('ForbiddenException');

    const extra = await t.app.directory.createAssignment({
      principalType: 'user',
      principalId: alice,
      accountId: dev,
      permissionSet: 'Billing',
    });
    const issued = await get(dev, 'Billing');
    expect(issued.roleCredentials?.accessKeyId).toBeTruthy();
    await t.app.directory.deleteAssignment(extra.id);
    const removed = await awsError(get(dev, 'Billing'));
    expect(removed.name).toBe('ForbiddenException');
    expect(removed.$metadata.httpStatusCode).toBe(403);
  });

  it('ends a disabled user’s tokens: UnauthorizedException, and no refresh', async () => {
    const carol = await createUser(t, 'carol');
    await t.app.directory.createAssignment({
      principalType: 'user',
      principalId: carol,
      accountId: prod,
      permissionSet: 'ReadOnlyAccess',
    });
    const { client, token } = await login(await signIn(t, carol));
    const sso = ssoClient();
    expect(
      (await sso.send(new ListAccountsCommand({ accessToken: token.accessToken }))).accountList,
    ).toHaveLength(1);
    const admin = await createUser(t, 'root-admin', { admin: true });
    await t.app.directory.updateUser(admin, carol, { disabled: true });
    const refused = await awsError(
      sso.send(
        new GetRoleCredentialsCommand({
          accessToken: token.accessToken,
          accountId: prod,
          roleName: 'ReadOnlyAccess',
        }),
      ),
    );
    expect(refused.name).toBe('UnauthorizedException');
    expect(refused.$metadata.httpStatusCode).toBe(401);
    const refresh = await awsError(
      oidcClient().send(
        new CreateTokenCommand({
          clientId: client.clientId,
          clientSecret: client.clientSecret,
          grantType: 'refresh_token',
          refreshToken: token.refreshToken,
        }),
      ),
    );
    expect(refresh.name).toBe('InvalidGrantException');
  });

  it('ends the tokens when the user signs out of Cove', async () => {
    const cookie = await signIn(t, alice);
    const { token } = await login(cookie);
    expect((await browser('POST', '/api/auth/logout', cookie)).statusCode).toBe(204);
    const error = await awsError(
      ssoClient().send(new ListAccountsCommand({ accessToken: token.accessToken })),
    );
    expect(error.name).toBe('UnauthorizedException');
    // Her other browser session is still signed in; only the command line sign-ins ended.
    expect((await browser('GET', '/api/me', aliceCookie)).statusCode).toBe(200);
  });

  it('sends the error name in x-amzn-ErrorType and an OAuth body, as AWS does', async () => {
    const response = await fetch(`${publicUrl}/aws/oidc/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        clientId: 'nobody',
        clientSecret: 'x',
        grantType: 'refresh_token',
        refreshToken: 'r',
      }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('x-amzn-errortype')).toBe('InvalidClientException');
    expect(await response.json()).toEqual({
      error: 'invalid_client',
      error_description:
        'The client is not registered, its secret is wrong, or its registration expired. Register again.',
    });
    const portal = await fetch(`${publicUrl}/aws/portal/assignment/accounts`, {
      headers: { 'x-amz-sso_bearer_token': 'made-up' },
    });
    expect(portal.status).toBe(401);
    expect(portal.headers.get('x-amzn-errortype')).toBe('UnauthorizedException');
    expect(await portal.json()).toEqual({ message: 'Session token not found or invalid' });

    // Pagination input is checked: InvalidRequestException, as AWS names it.
    const { token } = await login(aliceCookie);
    const sso = ssoClient();
    const badSize = await awsError(
      sso.send(new ListAccountsCommand({ accessToken: token.accessToken, maxResults: 0 })),
    );
    expect(badSize.name).toBe('InvalidRequestException');
    expect(badSize.$metadata.httpStatusCode).toBe(400);
    const badToken = await awsError(
      sso.send(new ListAccountsCommand({ accessToken: token.accessToken, nextToken: 'not-a-token' })),
    );
    expect(badToken.name).toBe('InvalidRequestException');
    expect(badToken.message).toBe('next_token is not valid.');
    expect(bobCookie).toBeTruthy();
  });
});
