/**
 * OpenID Connect sign-in against a real OpenID provider (oidc-provider on loopback), the whole
 * code flow over HTTP with a cookie jar: Cove's "Sign in with" link, the provider's login form,
 * the redirect back. No Docker: the fake sandbox driver. Three Cove providers point at the one
 * test IdP: `corp` (jit, trusts the IdP's MFA), `strict` (pre-provisioned users only, never
 * trusts it), `mail` (the email address is the user name), `plain` (groups stay as admins set them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash } from '@node-rs/argon2';
import { CookieJarBrowser } from '../../../helpers/cookie-jar-browser.js';
import { startTestIdp, type TestIdp } from '../../../helpers/oidc-provider.js';
import {
  coveApi,
  coveSession,
  reserveCoveOrigin,
  signInWithProvider,
  startOidcCove,
  type OidcCove,
} from '../../../helpers/oidc-cove.js';
import { totpCode } from '../../../../server/auth/totp.js';
import { freeLoopbackPort } from '../../../helpers/free-port.js';
import type { Me, PortalResponse } from '../../../../server/protocol/api.js';

const clientId = 'cove-tests';
const clientSecret = 'not-a-real-secret-0123456789';

let idp: TestIdp;
let cove: OidcCove;

beforeAll(async () => {
  const at = await reserveCoveOrigin();
  const callback = (id: string) => `${at.origin}/auth/oidc/${id}/callback`;
  idp = await startTestIdp({
    client: {
      clientId,
      clientSecret,
      redirectUris: ['corp', 'strict', 'mail', 'plain'].map(callback),
      postLogoutRedirectUris: [`${at.origin}/login?signed-out=1`],
    },
    users: [
      {
        sub: 'sub-alice',
        password: 'pw-alice',
        preferred_username: 'alice',
        groups: ['devs', 'no-such-group', 'admins'],
      },
      { sub: 'sub-ann', password: 'pw-ann', preferred_username: 'ann', amr: ['pwd', 'otp'] },
      { sub: 'sub-bob', password: 'pw-bob', preferred_username: 'bob' },
      { sub: 'sub-nina', password: 'pw-nina', preferred_username: 'nina', amr: ['pwd', 'hwk'] },
      { sub: 'sub-carol', password: 'pw-carol', preferred_username: 'carol' },
      {
        sub: 'sub-dan',
        password: 'pw-dan',
        preferred_username: 'dan',
        email: 'dan@example.com',
        email_verified: false,
      },
      {
        sub: 'sub-erin',
        password: 'pw-erin',
        preferred_username: 'erin',
        email: 'Erin@Example.com',
        email_verified: true,
      },
    ],
  });
  const common = {
    issuer: idp.issuer,
    clientId,
    clientSecret,
    scopes: ['openid', 'profile', 'email', 'groups'],
  };
  cove = await startOidcCove(
    at,
    [
      { ...common, id: 'corp', name: 'Corp SSO', trustIdpMfa: true },
      { ...common, id: 'strict', name: 'Strict SSO', provisioning: 'preProvisioned' },
      { ...common, id: 'mail', name: 'Mail SSO', usernameClaim: 'email' },
      { ...common, id: 'plain', name: 'Plain SSO', groupsClaim: '' },
      // Nothing listens there: a provider that is down.
      { ...common, id: 'down', name: 'Down SSO', issuer: `http://127.0.0.1:${await freeLoopbackPort()}` },
    ],
    { auth: { requireMfa: true } },
  );
  const { store } = cove.t;
  await store.groups.create({ name: 'devs' });
  await store.groups.create({ name: 'ops' });
  await store.groups.create({ name: 'admins' });
  await store.accounts.create({ accountId: '111122223333', name: 'Sandbox' });
  const set = await store.permissionSets.create({
    name: 'Developer',
    sessionDurationS: 3600,
    roleArnTemplate: 'arn:aws:iam::{accountId}:role/Developer',
  });
  const devs = await store.groups.getByName('devs');
  await store.assignments.create({
    principalType: 'group',
    principalId: devs?.id ?? '',
    accountId: '111122223333',
    permissionSetId: set.id,
  });
  const passwordHash = await hash('local password', { algorithm: 2, memoryCost: 1024, timeCost: 1 });
  await store.users.create({ username: 'carol', passwordHash });
});
afterAll(() => cove?.close());

describe('OIDC sign-in with a real provider', () => {
  it('lists the providers for the sign-in page', async () => {
    const res = await coveApi<{ providers: { id: string; name: string; loginUrl: string }[] }>(
      new CookieJarBrowser(),
      cove,
      '/api/auth/oidc/providers',
    );
    expect(res.status).toBe(200);
    expect(res.body.providers).toEqual([
      { id: 'corp', name: 'Corp SSO', loginUrl: '/auth/oidc/corp/login' },
      { id: 'strict', name: 'Strict SSO', loginUrl: '/auth/oidc/strict/login' },
      { id: 'mail', name: 'Mail SSO', loginUrl: '/auth/oidc/mail/login' },
      { id: 'plain', name: 'Plain SSO', loginUrl: '/auth/oidc/plain/login' },
      { id: 'down', name: 'Down SSO', loginUrl: '/auth/oidc/down/login' },
    ]);
  });

  it('makes the user at the first sign-in (jit), links the subject, and maps groups by exact name', async () => {
    const browser = new CookieJarBrowser();
    const landed = await signInWithProvider(browser, cove, 'corp', {
      username: 'alice',
      password: 'pw-alice',
    });
    expect(landed.location).toBe(`${cove.origin}/`);
    expect(coveSession(browser)).toBeDefined();
    expect(browser.cookie('127.0.0.1', 'cove_oidc')).toBeUndefined();
    const me = await coveApi<Me>(browser, cove, '/api/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ username: 'alice', isAdmin: false });

    const { store } = cove.t;
    const alice = await store.users.getByUsername('alice');
    expect(alice).toMatchObject({ source: 'oidc:corp', passwordHash: null });
    expect(await store.identities.get('corp', 'sub-alice')).toMatchObject({ userId: alice?.id });
    // `devs` exists and is claimed; `no-such-group` is ignored; `admins` is not taken from a claim.
    expect((await store.groups.groupsOf(alice?.id ?? '')).map((g) => g.name)).toEqual(['devs']);
    const [success] = await cove.audits('auth.oidc.login.succeeded');
    expect(success?.details).toMatchObject({
      provider: 'corp',
      subject: 'sub-alice',
      groupsAdded: ['devs'],
      groupsUnknown: ['no-such-group'],
      ignoredAdminsClaim: true,
    });
    expect(await cove.audits('auth.oidc.user_created')).toHaveLength(1);
  });

  it('moves group memberships to match the claim at every sign-in', async () => {
    const { store } = cove.t;
    const alice = await store.users.getByUsername('alice');
    const ops = await store.groups.getByName('ops');
    await store.groups.addMember(ops?.id ?? '', alice?.id ?? '');
    const user = idp.users.get('alice');
    idp.users.set('alice', { ...user!, groups: ['ops'] });
    const browser = new CookieJarBrowser();
    await signInWithProvider(browser, cove, 'corp', { username: 'alice', password: 'pw-alice' });
    expect((await store.groups.groupsOf(alice?.id ?? '')).map((g) => g.name)).toEqual(['ops']);
    idp.users.set('alice', { ...user!, groups: ['devs'] });
    await signInWithProvider(browser, cove, 'corp', { username: 'alice', password: 'pw-alice' });
    expect((await store.groups.groupsOf(alice?.id ?? '')).map((g) => g.name)).toEqual(['devs']);
    // Same user as before (linked by subject), no second user.
    expect(await cove.audits('auth.oidc.user_created')).toHaveLength(1);
  });

  it('trusts MFA done at the provider when configured: no Cove TOTP, the portal opens', async () => {
    const browser = new CookieJarBrowser();
    const landed = await signInWithProvider(browser, cove, 'corp', { username: 'ann', password: 'pw-ann' });
    expect(landed.location).toBe(`${cove.origin}/`);
    const me = await coveApi<Me>(browser, cove, '/api/me');
    expect(me.body).toMatchObject({ username: 'ann', mfaRequired: false, mfaEnrolled: false });
    expect((await coveApi(browser, cove, '/api/portal')).status).toBe(200);
    expect((await cove.audits('auth.oidc.login.succeeded')).at(-1)?.details).toMatchObject({
      mfaByIdp: true,
    });
  });

  it('without MFA at the provider, auth.requireMfa still gates the session until TOTP is enrolled', async () => {
    const browser = new CookieJarBrowser();
    await signInWithProvider(browser, cove, 'corp', { username: 'alice', password: 'pw-alice' });
    expect((await coveApi<Me>(browser, cove, '/api/me')).body).toMatchObject({
      mfaRequired: true,
      mfaEnrolled: false,
    });
    const portal = await coveApi<{ code: string }>(browser, cove, '/api/portal');
    expect(portal.status).toBe(403);
    expect(portal.body.code).toBe('COVE_ERR_AUTH_MFA_ENROLLMENT_REQUIRED');
  });

  it('a provider that does not trust IdP MFA asks for Cove’s own TOTP, even after MFA at the IdP', async () => {
    const { store } = cove.t;
    // Pre-provisioned for `strict`, with TOTP enrolled.
    const nina = await store.users.create({ username: 'nina', source: 'oidc:strict' });
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    await store.users.update(nina.id, { totpSecret: secret });
    const browser = new CookieJarBrowser();
    const landed = await signInWithProvider(
      browser,
      cove,
      'strict',
      { username: 'nina', password: 'pw-nina' },
      { next: '/shell/us-east-1' },
    );
    expect(landed.location).toBe(`${cove.origin}/login?next=%2Fshell%2Fus-east-1`);
    const pending = await coveApi<{ code: string }>(browser, cove, '/api/me');
    expect(pending.status).toBe(401);
    expect(pending.body.code).toBe('COVE_ERR_AUTH_MFA_PENDING');
    expect((await coveApi(browser, cove, '/api/portal')).status).toBe(401);
    const mfa = await fetch(`${cove.origin}/api/auth/mfa`, {
      method: 'POST',
      headers: {
        origin: cove.origin,
        'content-type': 'application/json',
        cookie: `cove_session=${coveSession(browser)}`,
      },
      body: JSON.stringify({ code: totpCode(secret, Date.now()) }),
    });
    expect(mfa.status).toBe(200);
    const full = /cove_session=([^;]+)/.exec(mfa.headers.getSetCookie().join('\n'))?.[1];
    browser.setCookie('127.0.0.1', 'cove_session', full ?? '');
    expect((await coveApi(browser, cove, '/api/portal')).status).toBe(200);
    expect((await cove.audits('auth.oidc.linked')).map((a) => a.details.subject)).toContain('sub-nina');
  });

  it('refuses a user who was not pre-provisioned for a pre-provisioned-only provider', async () => {
    const browser = new CookieJarBrowser();
    const page = await signInWithProvider(browser, cove, 'strict', { username: 'bob', password: 'pw-bob' });
    expect(page.status).toBe(403);
    expect(page.body).toContain('You have no Cove account yet');
    expect(page.body).toContain('href="/login"');
    expect(coveSession(browser)).toBeUndefined();
    expect(await cove.t.store.users.getByUsername('bob')).toBeUndefined();
    expect((await cove.audits('auth.oidc.login.failed')).at(-1)?.details).toMatchObject({
      provider: 'strict',
      reason: 'not_provisioned',
      subject: 'sub-bob',
    });
  });

  it('never merges a local user of the same name: a clear page, no session, the admin told in the audit log', async () => {
    const browser = new CookieJarBrowser();
    const page = await signInWithProvider(browser, cove, 'corp', { username: 'carol', password: 'pw-carol' });
    expect(page.status).toBe(409);
    expect(page.body).toContain('Your user name is already taken in Cove');
    expect(page.body).not.toMatch(/at .*\.ts:\d+/);
    expect(coveSession(browser)).toBeUndefined();
    const carol = await cove.t.store.users.getByUsername('carol');
    expect(carol?.source).toBe('local');
    expect(await cove.t.store.identities.listFor(carol?.id ?? '')).toEqual([]);
    const failed = (await cove.audits('auth.oidc.login.failed')).at(-1);
    expect(failed?.details).toMatchObject({
      provider: 'corp',
      reason: 'name_collision',
      subject: 'sub-carol',
    });
    expect(String(failed?.details.detail)).toContain('carol');
  });

  it('with email as the user name, refuses an unverified address and takes a verified one', async () => {
    const browser = new CookieJarBrowser();
    const refused = await signInWithProvider(browser, cove, 'mail', { username: 'dan', password: 'pw-dan' });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('Your email address is not verified');
    expect(coveSession(browser)).toBeUndefined();
    expect((await cove.audits('auth.oidc.login.failed')).at(-1)?.details).toMatchObject({
      reason: 'email_unverified',
    });
    const other = new CookieJarBrowser();
    const landed = await signInWithProvider(other, cove, 'mail', { username: 'erin', password: 'pw-erin' });
    expect(landed.location).toBe(`${cove.origin}/`);
    expect((await coveApi<Me>(other, cove, '/api/me')).body.username).toBe('erin@example.com');
  });

  it('signs out at the provider too (RP-initiated logout), with the ID token as hint', async () => {
    const browser = new CookieJarBrowser();
    await signInWithProvider(browser, cove, 'corp', { username: 'ann', password: 'pw-ann' });
    const session = coveSession(browser);
    const res = await fetch(`${cove.origin}/api/auth/logout`, {
      method: 'POST',
      headers: { origin: cove.origin, cookie: `cove_session=${session}` },
    });
    expect(res.status).toBe(200);
    const { logoutUrl } = (await res.json()) as { logoutUrl: string };
    const url = new URL(logoutUrl);
    expect(url.origin).toBe(idp.issuer);
    expect(url.searchParams.get('client_id')).toBe(clientId);
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${cove.origin}/login?signed-out=1`);
    expect(url.searchParams.get('id_token_hint')?.split('.')).toHaveLength(3);
    // The provider accepts it: its "sign out?" confirmation, not an error.
    const confirm = await browser.request(logoutUrl);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toMatch(/<form/);
    expect((await coveApi(browser, cove, '/api/me')).status).toBe(401);
  });

  it('a local sign-out stays local (204, no provider URL)', async () => {
    const { store } = cove.t;
    const local = await store.users.getByUsername('carol');
    const res = await cove.t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { origin: cove.origin, 'content-type': 'application/json' },
      payload: { username: local?.username, password: 'local password' },
    });
    const cookie = res.cookies.find((c) => c.name === 'cove_session')?.value;
    const out = await cove.t.app.inject({
      method: 'POST',
      url: '/api/auth/logout',
      headers: { origin: cove.origin, cookie: `cove_session=${cookie}` },
    });
    expect(out.statusCode).toBe(204);
  });

  it('shows the group-assigned account and permission set in the portal of a federated user', async () => {
    const browser = new CookieJarBrowser();
    await signInWithProvider(browser, cove, 'corp', { username: 'ann', password: 'pw-ann' });
    const devs = await cove.t.store.groups.getByName('devs');
    const ann = await cove.t.store.users.getByUsername('ann');
    idp.users.set('ann', { ...idp.users.get('ann')!, groups: ['devs'] });
    await signInWithProvider(browser, cove, 'corp', { username: 'ann', password: 'pw-ann' });
    expect((await cove.t.store.groups.members(devs?.id ?? '')).includes(ann?.id ?? '')).toBe(true);
    const portal = await coveApi<PortalResponse>(browser, cove, '/api/portal');
    expect(portal.status).toBe(200);
    expect(JSON.stringify(portal.body)).toContain('111122223333');
    expect(JSON.stringify(portal.body)).toContain('Developer');
  });

  it('with groupsClaim empty, leaves memberships as admins set them, whatever the token says', async () => {
    const { store } = cove.t;
    const pat = await store.users.create({ username: 'pat', source: 'oidc:plain' });
    const ops = await store.groups.getByName('ops');
    await store.groups.addMember(ops?.id ?? '', pat.id);
    idp.users.set('pat', { sub: 'sub-pat', password: 'pw-pat', preferred_username: 'pat', groups: ['devs'] });
    const landed = await signInWithProvider(new CookieJarBrowser(), cove, 'plain', {
      username: 'pat',
      password: 'pw-pat',
    });
    expect(landed.location).toBe(`${cove.origin}/`);
    expect((await store.groups.groupsOf(pat.id)).map((g) => g.name)).toEqual(['ops']);
  });

  it('a provider that cannot be reached gives a clear page, no sign-in in flight, and an audit entry', async () => {
    const browser = new CookieJarBrowser();
    const page = await browser.request(`${cove.origin}/auth/oidc/down/login`);
    expect(page.status).toBe(502);
    expect(page.body).toContain('Down SSO cannot be reached');
    expect(page.body).toContain('href="/login"');
    expect(browser.cookie('127.0.0.1', 'cove_oidc')).toBeUndefined();
    expect((await cove.audits('auth.oidc.login.failed')).at(-1)?.details).toMatchObject({
      provider: 'down',
      reason: 'provider_unavailable',
    });
  });

  it('an unknown provider id is a 404 page, not a redirect', async () => {
    const page = await new CookieJarBrowser().request(`${cove.origin}/auth/oidc/nope/login`);
    expect(page.status).toBe(404);
    expect(page.body).toContain('No such sign-in option');
  });

  it('an admin pre-provisions a user for a provider through the API; their first sign-in links it', async () => {
    const { store, app } = cove.t;
    const passwordHash = await hash('root password here', { algorithm: 2, memoryCost: 1024, timeCost: 1 });
    const root = await store.users.create({ username: 'root', passwordHash, mfaRequired: false });
    // Enrolled, so auth.requireMfa (on in this Cove) does not gate the admin's session.
    await store.users.update(root.id, { totpSecret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' });
    const admins = await store.groups.getByName('admins');
    await store.groups.addMember(admins?.id ?? '', root.id);
    const { token } = await app.sessions.create(root.id, 'full');
    const post = (payload: unknown) =>
      app.inject({
        method: 'POST',
        url: '/api/admin/users',
        headers: { origin: cove.origin, 'content-type': 'application/json', cookie: `cove_session=${token}` },
        payload: JSON.stringify(payload),
      });
    const unknown = await post({ username: 'bob', identityProvider: 'nope' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json<{ message: string }>().message).toContain('not a configured identity provider');
    expect(
      (await post({ username: 'bob', identityProvider: 'strict', password: 'a long password 1' })).statusCode,
    ).toBe(400);
    const created = await post({ username: 'bob', identityProvider: 'strict', groups: ['ops'] });
    expect(created.statusCode).toBe(201);
    expect(created.json()).not.toHaveProperty('inviteUrl');
    const listed = await app.inject({
      method: 'GET',
      url: '/api/admin/users',
      headers: { cookie: `cove_session=${token}` },
    });
    expect(
      listed.json<{ username: string; source: string }[]>().find((u) => u.username === 'bob')?.source,
    ).toBe('oidc:strict');

    const browser = new CookieJarBrowser();
    const landed = await signInWithProvider(browser, cove, 'strict', { username: 'bob', password: 'pw-bob' });
    expect(landed.location).toBe(`${cove.origin}/`);
    const bob = await store.users.getByUsername('bob');
    expect(await store.identities.get('strict', 'sub-bob')).toMatchObject({ userId: bob?.id });
    // The same Cove user is not open to another provider.
    const other = await signInWithProvider(new CookieJarBrowser(), cove, 'corp', {
      username: 'bob',
      password: 'pw-bob',
    });
    expect(other.status).toBe(409);
  });
});
