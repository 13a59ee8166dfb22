/**
 * SECURITY-TESTS O01 (state, code and nonce), O02 (forged ID tokens), O03 (names and claims that
 * must not make an IdP user someone else, or an admin), and an error returned by the IdP.
 *
 * A real OpenID provider cannot be made to issue a bad token, so most cases use a stand-in IdP
 * (tests/helpers/oidc-stand-in.ts): a loopback server that speaks the real discovery, JWKS,
 * authorization and token protocol and lets the test choose each ID token's claims, header and
 * signing key (made with jose). The code-used-twice case runs against the real oidc-provider.
 * Every refusal is checked three ways: a Cove error page (status, title, a link back to sign-in,
 * no stack trace), no session for the browser, and an audit entry with the specific reason.
 * No Docker: the fake sandbox driver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash } from '@node-rs/argon2';
import { CookieJarBrowser, type Page } from '../helpers/cookie-jar-browser.js';
import {
  hs256WithPublicKey,
  startStandInIdp,
  unsignedJwt,
  type StandInIdp,
  type TokenContext,
} from '../helpers/oidc-stand-in.js';
import { startTestIdp, type TestIdp } from '../helpers/oidc-provider.js';
import {
  coveApi,
  coveSession,
  reserveCoveOrigin,
  signInWithProvider,
  startOidcCove,
  type OidcCove,
} from '../helpers/oidc-cove.js';
import type { Me } from '../../server/protocol/api.js';
import { hashToken } from '../../server/auth/session-service.js';

let idp: StandInIdp;
/** Its discovery lists `none` and `HS256`: the RP's own checks must still refuse them. */
let laxIdp: StandInIdp;
let realIdp: TestIdp;
let cove: OidcCove;

beforeAll(async () => {
  const at = await reserveCoveOrigin();
  idp = await startStandInIdp();
  laxIdp = await startStandInIdp({ signingAlgs: ['RS256', 'HS256', 'none'] });
  realIdp = await startTestIdp({
    client: {
      clientId: 'cove-real',
      clientSecret: 'real-idp-test-secret-123',
      redirectUris: [`${at.origin}/auth/oidc/real/callback`],
      postLogoutRedirectUris: [],
    },
    users: [{ sub: 'sub-rita', password: 'pw-rita', preferred_username: 'rita' }],
  });
  const provider = (id: string, i: StandInIdp) => ({
    id,
    name: `${id} IdP`,
    issuer: i.issuer,
    clientId: i.clientId,
    clientSecret: i.clientSecret,
  });
  cove = await startOidcCove(at, [
    provider('stand', idp),
    provider('lax', laxIdp),
    {
      id: 'real',
      name: 'Real IdP',
      issuer: realIdp.issuer,
      clientId: 'cove-real',
      clientSecret: 'real-idp-test-secret-123',
    },
  ]);
  const { store } = cove.t;
  const passwordHash = await hash('local password', { algorithm: 2, memoryCost: 1024, timeCost: 1 });
  const admin = await store.users.create({ username: 'admin', passwordHash, email: 'admin@example.com' });
  const admins = await store.groups.create({ name: 'admins' });
  await store.groups.addMember(admins.id, admin.id);
});
afterAll(() => cove?.close());

/** The provider's redirect to Cove's callback, not yet taken. */
async function toCallback(browser: CookieJarBrowser, provider = 'stand'): Promise<string> {
  const page = await signInWithProvider(
    browser,
    cove,
    provider,
    { username: '', password: '' },
    { stopAtCallback: true },
  );
  if (!page.location) throw new Error(`no redirect to the callback: ${page.status} ${page.url}`);
  return page.location;
}

/** Signs in at the stand-in with this ID token (made when the token endpoint is called). */
async function signInWithToken(
  make: (ctx: TokenContext) => Promise<string>,
  i: StandInIdp = idp,
  provider = 'stand',
): Promise<{ page: Page; browser: CookieJarBrowser }> {
  const browser = new CookieJarBrowser();
  const callback = await toCallback(browser, provider);
  i.nextToken = make;
  const page = await browser.request(callback);
  return { page, browser };
}

async function lastFailure(): Promise<Record<string, unknown> | undefined> {
  return (await cove.audits('auth.oidc.login.failed')).at(-1)?.details;
}

/** A Cove error page, no session, the audit entry with this reason. */
async function expectRefused(
  result: { page: Page; browser: CookieJarBrowser },
  reason: string,
  status = 400,
): Promise<void> {
  const { page, browser } = result;
  expect(page.status).toBe(status);
  expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  expect(page.body).toContain('href="/login"');
  expect(page.body).not.toMatch(/\.ts:\d+|at async|Error:/);
  expect(coveSession(browser)).toBeUndefined();
  expect((await coveApi(browser, cove, '/api/me')).status).toBe(401);
  expect(await lastFailure()).toMatchObject({ reason });
}

describe('O01 state, code and nonce', () => {
  it('O01 a wrong state is refused, and burns the sign-in so the right one fails too', async () => {
    const browser = new CookieJarBrowser();
    const callback = new URL(await toCallback(browser));
    const forged = new URL(callback);
    forged.searchParams.set('state', 'attacker-state');
    // The error page clears the sign-in cookie; a copy kept from before shows the server forgot it too.
    const copy = browser.clone();
    await expectRefused({ page: await browser.request(forged.href), browser }, 'state_mismatch');
    expect(browser.cookie('127.0.0.1', 'cove_oidc')).toBeUndefined();
    await expectRefused(
      { page: await copy.request(callback.href), browser: copy },
      'sign_in_expired_or_used',
    );
    // Cove refused before redeeming: the provider never saw the code.
    expect(idp.tokenCalls.map((c) => c.code)).not.toContain(callback.searchParams.get('code'));
  });

  it('O01 a replayed callback (same state, same cookie) is refused after the first one signed in', async () => {
    const browser = new CookieJarBrowser();
    const callback = await toCallback(browser);
    const thief = browser.clone();
    const first = await browser.request(callback);
    expect(first.status).toBe(302);
    expect(coveSession(browser)).toBeDefined();
    const calls = idp.tokenCalls.length;
    await expectRefused({ page: await thief.request(callback), browser: thief }, 'sign_in_expired_or_used');
    expect(idp.tokenCalls).toHaveLength(calls);
  });

  it('O01 a callback in a browser that did not start the sign-in (login CSRF) is refused', async () => {
    const attacker = new CookieJarBrowser();
    const callback = await toCallback(attacker);
    const victim = new CookieJarBrowser();
    await expectRefused({ page: await victim.request(callback), browser: victim }, 'no_sign_in_cookie');
  });

  it('O01 a code used twice fails at the provider and at Cove (real oidc-provider)', async () => {
    const browser = new CookieJarBrowser();
    const page = await signInWithProvider(
      browser,
      cove,
      'real',
      { username: 'rita', password: 'pw-rita' },
      { stopAtCallback: true },
    );
    const callback = new URL(page.location ?? '');
    // The PKCE verifier of this sign-in, read through Cove's store (and put back, since reading
    // takes it), so the test can redeem the code itself on either database.
    const idHash = hashToken(browser.cookie('127.0.0.1', 'cove_oidc') ?? '');
    const login = await cove.t.store.oidcLogins.take(idHash, Date.now());
    expect(login?.providerId).toBe('real');
    if (login) await cove.t.store.oidcLogins.create(login);
    const thief = browser.clone();
    expect((await browser.request(callback.href)).status).toBe(302);
    expect(coveSession(browser)).toBeDefined();
    const again = await fetch(`${realIdp.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: callback.searchParams.get('code') ?? '',
        redirect_uri: `${cove.origin}/auth/oidc/real/callback`,
        code_verifier: login?.codeVerifier ?? '',
        client_id: 'cove-real',
        client_secret: 'real-idp-test-secret-123',
      }),
    });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: string }).error).toBe('invalid_grant');
    await expectRefused(
      { page: await thief.request(callback.href), browser: thief },
      'sign_in_expired_or_used',
    );
  });

  it('O01 a code the provider refuses (invalid_grant) is refused', async () => {
    const browser = new CookieJarBrowser();
    const callback = new URL(await toCallback(browser));
    callback.searchParams.set('code', 'made-up-code');
    await expectRefused({ page: await browser.request(callback.href), browser }, 'code_rejected');
  });

  it('O01 an ID token with another nonce is refused', async () => {
    await expectRefused(
      await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx, { nonce: 'not-this-sign-ins-nonce' }))),
      'wrong_nonce',
    );
  });

  it('an error returned by the IdP (?error=access_denied) gives a clear page', async () => {
    idp.nextAuthorizationError = 'access_denied';
    const browser = new CookieJarBrowser();
    const page = await browser.request(await toCallback(browser));
    await expectRefused({ page, browser }, 'idp_error', 403);
    expect(page.body).toContain('did not sign you in');
  });
});

describe('O02 forged ID tokens', () => {
  it('O02 alg:none is refused (provider metadata: RS256)', async () => {
    await expectRefused(
      await signInWithToken(async (ctx) => unsignedJwt(idp.baseClaims(ctx))),
      'bad_algorithm',
    );
  });

  it('O02 alg:none is refused even when the provider’s metadata lists it', async () => {
    await expectRefused(
      await signInWithToken(async (ctx) => unsignedJwt(laxIdp.baseClaims(ctx)), laxIdp, 'lax'),
      'bad_algorithm',
    );
  });

  it('O02 HS256 with the provider’s public key as the secret is refused (also when metadata lists HS256)', async () => {
    await expectRefused(
      await signInWithToken((ctx) => hs256WithPublicKey(idp.baseClaims(ctx), idp.current)),
      'bad_algorithm',
    );
    await expectRefused(
      await signInWithToken(
        (ctx) => hs256WithPublicKey(laxIdp.baseClaims(ctx), laxIdp.current),
        laxIdp,
        'lax',
      ),
      'bad_algorithm',
    );
  });

  it('O02 a token signed by a key the provider does not publish is refused (unknown kid)', async () => {
    const rogue = await idp.newKey('rogue-key');
    await expectRefused(await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx), rogue)), 'unknown_key');
  });

  it('O02 a token signed by another key under the provider’s kid is refused', async () => {
    const rogue = await idp.newKey(idp.current.kid);
    await expectRefused(
      await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx), rogue)),
      'bad_signature',
    );
  });

  it('O02 a token for another audience is refused', async () => {
    await expectRefused(
      await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx, { aud: 'some-other-client' }))),
      'wrong_audience',
    );
  });

  it('O02 a token for several audiences whose azp is another client is refused', async () => {
    await expectRefused(
      await signInWithToken((ctx) =>
        idp.sign(idp.baseClaims(ctx, { aud: [ctx.clientId, 'other-client'], azp: 'other-client' })),
      ),
      'wrong_azp',
    );
  });

  it('O02 a token from another issuer is refused', async () => {
    await expectRefused(
      await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx, { iss: 'https://evil.example' }))),
      'wrong_issuer',
    );
  });

  it('O02 an expired token is refused', async () => {
    await expectRefused(
      await signInWithToken((ctx) =>
        idp.sign(idp.baseClaims(ctx, { iat: ctx.now - 7200, exp: ctx.now - 3600 })),
      ),
      'expired',
    );
  });

  it('O02 a token issued in the future beyond the skew is refused', async () => {
    await expectRefused(
      await signInWithToken((ctx) =>
        idp.sign(idp.baseClaims(ctx, { iat: ctx.now + 600, exp: ctx.now + 900 })),
      ),
      'issued_in_future',
    );
  });

  it('O02 a small clock skew (inside oidcClockToleranceS) is accepted', async () => {
    idp.claims = { ...idp.claims, sub: 'skew-user', preferred_username: 'skew' };
    const { page, browser } = await signInWithToken((ctx) =>
      idp.sign(idp.baseClaims(ctx, { iat: ctx.now + 20, exp: ctx.now - 20 })),
    );
    expect(page.status).toBe(302);
    expect((await coveApi<Me>(browser, cove, '/api/me')).body.username).toBe('skew');
  });

  it('O02 a key the provider adds later (rotation) is fetched and accepted without a restart', async () => {
    idp.claims = { ...idp.claims, sub: 'rotation-user', preferred_username: 'rotation' };
    // Cove has the old JWKS cached from earlier sign-ins; the provider now signs with a new key.
    const next = await idp.newKey('stand-in-2');
    idp.published.push(next);
    idp.current = next;
    const { page, browser } = await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx)));
    expect(page.status).toBe(302);
    expect((await coveApi<Me>(browser, cove, '/api/me')).body.username).toBe('rotation');
  });
});

describe('O03 names and claims', () => {
  it('O03 an IdP user named like a local user is refused, never merged', async () => {
    idp.claims = { ...idp.claims, sub: 'idp-admin', preferred_username: 'Admin', email: 'x@example.com' };
    await expectRefused(await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx))), 'name_collision', 409);
    const admin = await cove.t.store.users.getByUsername('admin');
    expect(await cove.t.store.identities.listFor(admin?.id ?? '')).toEqual([]);
  });

  it('O03 a look-alike of a local name (Cyrillic а) is refused as a collision', async () => {
    idp.claims = { ...idp.claims, sub: 'idp-lookalike', preferred_username: '\u0430dmin' };
    await expectRefused(await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx))), 'name_collision', 409);
    expect((await cove.t.store.users.list()).map((u) => u.username)).not.toContain('\u0430dmin');
  });

  it('O03 an IdP user with a local user’s email becomes their own user, not the local one', async () => {
    idp.claims = {
      ...idp.claims,
      sub: 'idp-newbie',
      preferred_username: 'newbie',
      email: 'admin@example.com',
    };
    const { page, browser } = await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx)));
    expect(page.status).toBe(302);
    const me = (await coveApi<Me>(browser, cove, '/api/me')).body;
    const admin = await cove.t.store.users.getByUsername('admin');
    expect(me.username).toBe('newbie');
    expect(me.id).not.toBe(admin?.id);
  });

  it('O03 a groups claim naming admins does not make the user an admin', async () => {
    idp.claims = { ...idp.claims, sub: 'idp-mallory', preferred_username: 'mallory', groups: ['admins'] };
    const { page, browser } = await signInWithToken((ctx) => idp.sign(idp.baseClaims(ctx)));
    expect(page.status).toBe(302);
    expect((await coveApi<Me>(browser, cove, '/api/me')).body).toMatchObject({
      username: 'mallory',
      isAdmin: false,
    });
    expect((await coveApi(browser, cove, '/api/admin/users')).status).toBe(403);
    expect((await cove.audits('auth.oidc.login.succeeded')).at(-1)?.details).toMatchObject({
      ignoredAdminsClaim: true,
    });
  });
});
