/**
 * Attacks on the AWS CLI sign-in (issue 20, server/sso): the SSO OIDC and portal APIs under
 * /aws and the "Authorize request" page's API. Ids S01–S08 are proposals, not yet in the shared
 * SECURITY-TESTS.md (see README.md here). Requests go in through the real app (inject) as the
 * SDK sends them: JSON bodies, the bearer token in `x-amz-sso_bearer_token`, no cookies.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { origin, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';

const deviceGrant = 'urn:ietf:params:oauth:grant-type:device_code';
let rig: SecurityRig;
let alice: RigUser;
let bob: RigUser;
const prod = '111122223333';
const dev = '444455556666';
/** Every secret the flows handed out, for the leak check. */
const secrets: string[] = [];

const aws = async (
  method: 'GET' | 'POST',
  url: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
) => {
  const response = await rig.t.app.inject({
    method,
    url,
    headers: {
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(opts.token === undefined ? {} : { 'x-amz-sso_bearer_token': opts.token }),
      ...opts.headers,
    },
    ...(opts.body === undefined ? {} : { payload: JSON.stringify(opts.body) }),
  });
  return response;
};

const errorType = (response: LightMyRequestResponse) => response.headers['x-amzn-errortype'];

async function register() {
  const response = await aws('POST', '/aws/oidc/client/register', {
    body: { clientName: 'botocore-client-cove', clientType: 'public' },
  });
  expect(response.statusCode).toBe(200);
  const client = response.json<{ clientId: string; clientSecret: string }>();
  secrets.push(client.clientSecret);
  return client;
}

async function startDevice(client: { clientId: string; clientSecret: string }) {
  const response = await aws('POST', '/aws/oidc/device_authorization', {
    body: { ...client, startUrl: `${origin}/start` },
  });
  expect(response.statusCode).toBe(200);
  const device = response.json<{ deviceCode: string; userCode: string }>();
  secrets.push(device.deviceCode);
  return device;
}

async function login(user: RigUser) {
  const client = await register();
  const device = await startDevice(client);
  const decided = await rig.request(user, 'POST', `/api/sso/requests/${device.userCode}/decision`, {
    allow: true,
  });
  expect(decided.statusCode).toBe(200);
  const token = await aws('POST', '/aws/oidc/token', {
    body: { ...client, grantType: deviceGrant, deviceCode: device.deviceCode },
  });
  expect(token.statusCode).toBe(200);
  const tokens = token.json<{ accessToken: string; refreshToken: string }>();
  secrets.push(tokens.accessToken, tokens.refreshToken);
  return { client, ...tokens };
}

const accountsOf = async (token: string) => {
  const response = await aws('GET', '/aws/portal/assignment/accounts', { token });
  return {
    status: response.statusCode,
    type: errorType(response),
    body: response.json<Record<string, unknown>>(),
  };
};

beforeAll(async () => {
  rig = await startSecurityRig();
  const { directory } = rig.t.app;
  await directory.createAccount({ accountId: prod, name: 'prod' });
  await directory.createAccount({ accountId: dev, name: 'dev' });
  alice = await rig.user('alice');
  bob = await rig.user('bob');
  await directory.createAssignment({
    principalType: 'user',
    principalId: alice.id,
    accountId: prod,
    permissionSet: 'AdministratorAccess',
  });
  await directory.createAssignment({
    principalType: 'user',
    principalId: bob.id,
    accountId: dev,
    permissionSet: 'ReadOnlyAccess',
  });
});

afterAll(async () => {
  await rig.close();
});

describe('AWS CLI sign-in attacks', () => {
  it("S01 a user's token shows only that user's accounts and roles, never another's", async () => {
    const bobs = await login(bob);
    expect((await accountsOf(bobs.accessToken)).body).toEqual({
      accountList: [{ accountId: dev, accountName: 'dev' }],
    });
    const roles = await aws('GET', `/aws/portal/assignment/roles?account_id=${prod}`, {
      token: bobs.accessToken,
    });
    expect(roles.json()).toEqual({ roleList: [] });
    const creds = await aws(
      'GET',
      `/aws/portal/federation/credentials?account_id=${prod}&role_name=AdministratorAccess`,
      {
        token: bobs.accessToken,
      },
    );
    expect(creds.statusCode).toBe(403);
    expect(errorType(creds)).toBe('ForbiddenException');
    expect(creds.json()).toEqual({ message: 'No access' });
    // A Cove session cookie is not a portal credential: the /aws APIs read the bearer token only.
    const cookieOnly = await rig.t.app.inject({
      method: 'GET',
      url: '/aws/portal/assignment/accounts',
      headers: { cookie: alice.cookie, origin },
    });
    expect(cookieOnly.statusCode).toBe(401);
    expect(errorType(cookieOnly)).toBe('UnauthorizedException');
  });

  it("S02 another client's refresh token is refused and stays usable by its own client", async () => {
    const alices = await login(alice);
    const mallory = await register();
    const stolen = await aws('POST', '/aws/oidc/token', {
      body: { ...mallory, grantType: 'refresh_token', refreshToken: alices.refreshToken },
    });
    expect(stolen.statusCode).toBe(400);
    expect(errorType(stolen)).toBe('InvalidGrantException');
    expect(stolen.json()).toMatchObject({ error: 'invalid_grant' });
    // The refresh token without any client secret, or with the right id and a wrong secret.
    const noSecret = await aws('POST', '/aws/oidc/token', {
      body: {
        clientId: alices.client.clientId,
        grantType: 'refresh_token',
        refreshToken: alices.refreshToken,
      },
    });
    expect(errorType(noSecret)).toBe('InvalidClientException');
    const wrongSecret = await aws('POST', '/aws/oidc/token', {
      body: {
        clientId: alices.client.clientId,
        clientSecret: mallory.clientSecret,
        grantType: 'refresh_token',
        refreshToken: alices.refreshToken,
      },
    });
    expect(wrongSecret.statusCode).toBe(401);
    const own = await aws('POST', '/aws/oidc/token', {
      body: { ...alices.client, grantType: 'refresh_token', refreshToken: alices.refreshToken },
    });
    expect(own.statusCode).toBe(200);
    secrets.push(own.json<{ accessToken: string }>().accessToken);
  });

  it('S03 tokens stop working after Logout, Cove sign-out and disabling the user', async () => {
    const viaLogout = await login(alice);
    expect((await aws('POST', '/aws/portal/logout', { token: viaLogout.accessToken })).statusCode).toBe(200);
    expect(await accountsOf(viaLogout.accessToken)).toMatchObject({
      status: 401,
      type: 'UnauthorizedException',
    });
    // Logout again with the dead token: the same 401, nothing else.
    expect((await aws('POST', '/aws/portal/logout', { token: viaLogout.accessToken })).statusCode).toBe(401);

    const carol = await rig.user('carol');
    const viaSignOut = await login(carol);
    expect((await rig.request(carol, 'POST', '/api/auth/logout')).statusCode).toBe(204);
    expect(await accountsOf(viaSignOut.accessToken)).toMatchObject({
      status: 401,
      type: 'UnauthorizedException',
    });
    const refresh = await aws('POST', '/aws/oidc/token', {
      body: { ...viaSignOut.client, grantType: 'refresh_token', refreshToken: viaSignOut.refreshToken },
    });
    expect(errorType(refresh)).toBe('InvalidGrantException');

    const dave = await rig.user('dave');
    const viaDisable = await login(dave);
    const admin = await rig.user('admin', { admin: true });
    expect(
      (await rig.request(admin, 'PATCH', `/api/admin/users/${dave.id}`, { disabled: true })).statusCode,
    ).toBe(200);
    expect(await accountsOf(viaDisable.accessToken)).toMatchObject({
      status: 401,
      type: 'UnauthorizedException',
    });
  });

  it('S04 the Allow/Deny POST needs the same-origin rules as every browser POST', async () => {
    const client = await register();
    const device = await startDevice(client);
    const url = `/api/sso/requests/${device.userCode}/decision`;
    const attempts = [
      { origin: 'https://evil.example', 'content-type': 'application/json' },
      { referer: 'https://evil.example/page', 'content-type': 'application/json' },
      { 'content-type': 'application/json' },
      { origin: 'null', 'content-type': 'application/json' },
    ];
    for (const headers of attempts) {
      const response = await rig.t.app.inject({
        method: 'POST',
        url,
        headers: { cookie: alice.cookie, ...headers },
        payload: JSON.stringify({ allow: true }),
      });
      expect(response.statusCode, JSON.stringify(headers)).toBe(403);
      expect(response.json()).toMatchObject({ code: 'COVE_ERR_CSRF' });
    }
    // What a cross-site form can send: refused for its type even with the right Origin.
    const form = await rig.t.app.inject({
      method: 'POST',
      url,
      headers: { cookie: alice.cookie, origin, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'allow=true',
    });
    expect(form.statusCode).toBe(415);
    const poll = await aws('POST', '/aws/oidc/token', {
      body: { ...client, grantType: deviceGrant, deviceCode: device.deviceCode },
    });
    expect(errorType(poll)).toBe('AuthorizationPendingException');
  });

  it('S05 guessing user codes is throttled per user, and the right code waits too', async () => {
    const eve = await rig.user('eve');
    const client = await register();
    const device = await startDevice(client);
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const guess = `BCDF-${'GHJK'.slice(0, 3)}${'BCDFGHJ'[i] ?? 'B'}`;
      statuses.push((await rig.request(eve, 'GET', `/api/sso/requests/${guess}`)).statusCode);
    }
    expect(statuses.slice(0, 5)).toEqual([404, 404, 404, 404, 404]);
    expect(statuses.slice(5)).toEqual([429, 429]);
    const blocked = await rig.request(eve, 'POST', `/api/sso/requests/${device.userCode}/decision`, {
      allow: true,
    });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toMatch(/^\d+$/);
    expect(blocked.json()).toMatchObject({ code: 'COVE_ERR_SSO_THROTTLED' });
    // Another user is not held up by eve's guesses.
    const shown = await rig.request(alice, 'GET', `/api/sso/requests/${device.userCode}`);
    expect(shown.statusCode).toBe(200);
  });

  it('S06 the authorization code goes only to a loopback redirect, with PKCE S256, to the client that asked', async () => {
    const client = await register();
    const challenge = createHash('sha256').update('v'.repeat(50)).digest('base64url');
    const authorize = (params: Record<string, string>) =>
      rig.t.app.inject({
        method: 'GET',
        url: `/aws/oidc/authorize?${new URLSearchParams({
          response_type: 'code',
          client_id: client.clientId,
          redirect_uri: 'http://127.0.0.1:5000/cb',
          state: 's',
          code_challenge: challenge,
          code_challenge_method: 'S256',
          ...params,
        }).toString()}`,
      });
    for (const redirect of [
      'https://evil.example/cb',
      'http://evil.example/cb',
      'http://127.0.0.1.evil.example/cb',
      'http://127.0.0.1@evil.example/cb',
    ]) {
      const refused = await authorize({ redirect_uri: redirect });
      expect(refused.statusCode, redirect).toBe(400);
      expect(refused.headers.location).toBeUndefined();
    }
    expect(
      (await authorize({ code_challenge_method: 'plain', code_challenge: 'v'.repeat(50) })).statusCode,
    ).toBe(400);
    expect((await authorize({ client_id: 'made-up' })).statusCode).toBe(400);

    const ok = await authorize({});
    expect(ok.statusCode).toBe(302);
    const userCode = new URL(String(ok.headers.location), origin).searchParams.get('user_code') ?? '';
    const decided = (
      await rig.request(alice, 'POST', `/api/sso/requests/${userCode}/decision`, { allow: true })
    ).json<{
      redirectTo: string;
    }>();
    const code = new URL(decided.redirectTo).searchParams.get('code') ?? '';
    secrets.push(code);
    expect(new URL(decided.redirectTo).host).toBe('127.0.0.1:5000');
    // Another client cannot redeem it (and the attempt burns it).
    const other = await register();
    const stolen = await aws('POST', '/aws/oidc/token', {
      body: {
        ...other,
        grantType: 'authorization_code',
        code,
        codeVerifier: 'v'.repeat(50),
        redirectUri: 'http://127.0.0.1:5000/cb',
      },
    });
    expect(errorType(stolen)).toBe('InvalidGrantException');
    const late = await aws('POST', '/aws/oidc/token', {
      body: {
        ...client,
        grantType: 'authorization_code',
        code,
        codeVerifier: 'v'.repeat(50),
        redirectUri: 'http://127.0.0.1:5000/cb',
      },
    });
    expect(errorType(late)).toBe('InvalidGrantException');
  });

  it('S07 polling faster than the interval gets SlowDownException; an unknown grant type its own error', async () => {
    const client = await register();
    const device = await startDevice(client);
    const poll = () =>
      aws('POST', '/aws/oidc/token', {
        body: { ...client, grantType: deviceGrant, deviceCode: device.deviceCode },
      });
    expect(errorType(await poll())).toBe('AuthorizationPendingException');
    const fast = await poll();
    expect(fast.statusCode).toBe(400);
    expect(errorType(fast)).toBe('SlowDownException');
    expect(fast.json()).toEqual({
      error: 'slow_down',
      error_description: 'You are polling too fast. Wait the interval between calls.',
    });
    const odd = await aws('POST', '/aws/oidc/token', { body: { ...client, grantType: 'password' } });
    expect(errorType(odd)).toBe('UnsupportedGrantTypeException');
  });

  it('S09 unauthenticated registrations and device requests are bounded per address', async () => {
    const from = (remoteAddress: string, url: string, body: unknown) =>
      rig.t.app.inject({
        method: 'POST',
        url,
        remoteAddress,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
    const statuses: number[] = [];
    for (let i = 0; i < 32; i++)
      statuses.push(
        (
          await from('198.51.100.7', '/aws/oidc/client/register', {
            clientName: `flood-${i}`,
            clientType: 'public',
          })
        ).statusCode,
      );
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
    const refused = await from('198.51.100.7', '/aws/oidc/client/register', {
      clientName: 'one-more',
      clientType: 'public',
    });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['x-amzn-errortype']).toBe('TooManyRequestsException');
    expect(refused.json<{ error_description: string }>().error_description).toMatch(
      /^Too many sign-in requests from this address\. Try again in \d+ seconds\.$/,
    );
    const client = await from('198.51.100.7', '/aws/oidc/device_authorization', {
      clientId: 'x',
      clientSecret: 'y',
      startUrl: `${origin}/start`,
    });
    expect(client.statusCode).toBe(429);
    // Another address is not held up.
    expect(
      (await from('198.51.100.8', '/aws/oidc/client/register', { clientName: 'ok', clientType: 'public' }))
        .statusCode,
    ).toBe(200);
  });

  it('S08 no code, secret or token reaches the logs, the audit log or the database in clear', async () => {
    expect(secrets.length).toBeGreaterThan(20);
    const logs = rig.t.logs.join('');
    const audit = JSON.stringify(await rig.t.store.audit.list({ limit: 500 }));
    for (const secret of secrets) {
      expect(logs.includes(secret), 'logs').toBe(false);
      expect(audit.includes(secret), 'audit').toBe(false);
    }
    expect(audit).toContain('sso.request.approve');
    // Stored under its SHA-256 only: the token itself finds nothing.
    const live = await login(alice);
    const sha = (value: string) => createHash('sha256').update(value).digest('hex');
    expect(await rig.t.store.ssoTokens.get(sha(live.accessToken))).toMatchObject({
      kind: 'access',
      userId: alice.id,
    });
    expect(await rig.t.store.ssoTokens.get(live.accessToken)).toBeUndefined();
    expect(await rig.t.store.ssoClients.get(live.client.clientId)).toMatchObject({
      secretHash: sha(live.client.clientSecret),
    });
  });
});
