/**
 * Provisioned users sign in through the identity provider (README "Provision with SCIM"): a user
 * a SCIM token made for the `corp` provider is bound to the provider's subject at its first
 * OpenID sign-in (real oidc-provider on loopback, the whole code flow), a user SCIM deactivated
 * is refused, and nobody else gets in with `preProvisioned`. Fake sandbox driver: no Docker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { seedDirectory } from '../../../../server/directory/seed.js';
import { adminGroupName } from '../../../../server/auth/auth-plugin.js';
import type { Me } from '../../../../server/protocol/api.js';
import { okta } from './idp-requests.js';

let idp: TestIdp;
let cove: OidcCove;
let token: string;

const scim = (method: 'POST' | 'PATCH', url: string, body: unknown) =>
  cove.t.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
    payload: JSON.stringify(body),
  });

beforeAll(async () => {
  const at = await reserveCoveOrigin();
  idp = await startTestIdp({
    client: {
      clientId: 'cove-tests',
      clientSecret: 'not-a-real-secret-0123456789',
      redirectUris: [`${at.origin}/auth/oidc/corp/callback`],
      postLogoutRedirectUris: [`${at.origin}/login?signed-out=1`],
    },
    users: [
      { sub: 'sub-sam', password: 'pw-sam', preferred_username: 'sam' },
      { sub: 'sub-gone', password: 'pw-gone', preferred_username: 'gone' },
      { sub: 'sub-stranger', password: 'pw-stranger', preferred_username: 'stranger' },
    ],
  });
  cove = await startOidcCove(at, [
    {
      id: 'corp',
      name: 'Corp SSO',
      issuer: idp.issuer,
      clientId: 'cove-tests',
      clientSecret: 'not-a-real-secret-0123456789',
      provisioning: 'preProvisioned',
      groupsClaim: '',
    },
  ]);
  await seedDirectory(cove.t.app);
  const root = await cove.t.store.users.create({ username: 'root' });
  const admins = await cove.t.store.groups.getByName(adminGroupName);
  await cove.t.store.groups.addMember(admins?.id ?? '', root.id);
  const session = await cove.t.app.sessions.create(root.id, 'full');
  const made = await cove.t.app.inject({
    method: 'POST',
    url: '/api/admin/scim-tokens',
    headers: {
      cookie: `${cove.t.app.sessionCookieName}=${session.token}`,
      origin: cove.origin,
      'content-type': 'application/json',
    },
    payload: JSON.stringify({ name: 'Corp provisioning', providerId: 'corp' }),
  });
  expect(made.statusCode, made.body).toBe(201);
  token = made.json<{ secret: string }>().secret;
});
afterAll(() => cove?.close());

describe('SCIM-provisioned users and the identity provider', () => {
  it('binds a provisioned user to the provider’s subject at the first sign-in', async () => {
    const created = await scim('POST', '/scim/v2/Users', {
      ...okta.createUser,
      userName: 'sam',
      externalId: 'x-sam',
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json<{ id: string }>().id;
    const browser = new CookieJarBrowser();
    const landed = await signInWithProvider(browser, cove, 'corp', { username: 'sam', password: 'pw-sam' });
    expect(landed.location).toBe(`${cove.origin}/`);
    expect(coveSession(browser)).toBeDefined();
    const me = await coveApi<Me>(browser, cove, '/api/me');
    expect(me.body).toMatchObject({ username: 'sam' });
    expect(await cove.t.store.identities.get('corp', 'sub-sam')).toMatchObject({ userId: id });
    expect(await cove.audits('auth.oidc.linked')).toEqual([expect.objectContaining({ target: id })]);
  });

  it('refuses a user SCIM deactivated, and one the IdP never provisioned', async () => {
    const created = await scim('POST', '/scim/v2/Users', {
      ...okta.createUser,
      userName: 'gone',
      externalId: 'x-gone',
    });
    const id = created.json<{ id: string }>().id;
    expect((await scim('PATCH', `/scim/v2/Users/${id}`, okta.deactivateUser)).statusCode).toBe(200);
    const gone = await signInWithProvider(new CookieJarBrowser(), cove, 'corp', {
      username: 'gone',
      password: 'pw-gone',
    });
    expect(gone.status).toBe(403);
    expect(gone.body).toContain('Your Cove account is disabled');
    const stranger = new CookieJarBrowser();
    const refused = await signInWithProvider(stranger, cove, 'corp', {
      username: 'stranger',
      password: 'pw-stranger',
    });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('You have no Cove account yet');
    expect(coveSession(stranger)).toBeUndefined();
  });
});
