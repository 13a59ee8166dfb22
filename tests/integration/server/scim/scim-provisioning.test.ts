/**
 * SCIM 2.0 provisioning (issue 19, item 3) replaying the request bodies Okta's and Entra ID's
 * documentation publish (idp-requests.ts), each answer checked against RFC 7644's shapes; and
 * `active: false` ending the user's sessions and open terminals at once (4401). Fake sandbox
 * driver: no Docker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { hashToken } from '../../../../server/auth/session-service.js';
import { CloseCode } from '../../../../server/protocol/terminal-wire.js';
import { ready } from '../../../security/security-rig.js';
import { entra, okta } from './idp-requests.js';
import { expectScimError, startScimRig, type ScimRig } from './scim-rig.js';

let s: ScimRig;
let oktaToken: string;
let entraToken: string;

beforeAll(async () => {
  s = await startScimRig();
  oktaToken = (await s.token('okta', 'Okta production')).secret;
  entraToken = (await s.token('entra', 'Entra ID')).secret;
});
afterAll(async () => {
  await s.close();
});

const json = (r: LightMyRequestResponse) => r.json<Record<string, unknown>>();

/** RFC 7643 §3.1 common attributes and RFC 7644 §3.3's answer to a create. */
function expectResource(r: LightMyRequestResponse, status: number, resourceType: 'User' | 'Group') {
  expect(r.statusCode, r.body).toBe(status);
  expect(r.headers['content-type']).toMatch(/^application\/scim\+json/);
  const body = json(r);
  const meta = body.meta as Record<string, string>;
  expect(typeof body.id).toBe('string');
  expect(meta.resourceType).toBe(resourceType);
  expect(meta.location).toBe(`${s.rig.t.config.publicUrl}/scim/v2/${resourceType}s/${body.id as string}`);
  expect(new Date(String(meta.created)).toISOString()).toBe(meta.created);
  expect(new Date(String(meta.lastModified)).toISOString()).toBe(meta.lastModified);
  if (status === 201) expect(r.headers.location).toBe(meta.location);
  return body;
}

function expectList(r: LightMyRequestResponse, total: number) {
  expect(r.statusCode, r.body).toBe(200);
  const body = json(r);
  expect(body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
  expect(body.totalResults).toBe(total);
  expect(body.startIndex).toBe(1);
  const resources = body.Resources as Record<string, unknown>[];
  expect(body.itemsPerPage).toBe(resources.length);
  return resources;
}

describe('Okta', () => {
  it('looks the user up, creates it, reads it, replaces it and deactivates it', async () => {
    expectList(await s.scim(oktaToken, 'GET', okta.lookupUser), 0);
    const created = expectResource(
      await s.scim(oktaToken, 'POST', '/scim/v2/Users', okta.createUser),
      201,
      'User',
    );
    expect(created).toMatchObject({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'test.user@okta.local',
      externalId: '00ujl29u0le5T6Aj10h7',
      active: true,
      emails: [{ value: 'test.user@okta.local', type: 'work', primary: true }],
    });
    const id = created.id as string;
    // The password Okta may sync is never kept: the user signs in through the IdP.
    const user = await s.rig.t.store.users.get(id);
    expect(user).toMatchObject({ username: 'test.user@okta.local', passwordHash: null, source: 'oidc:okta' });
    expect(JSON.stringify(await s.rig.t.store.audit.list())).not.toContain('1mz050nq');

    const found = expectList(await s.scim(oktaToken, 'GET', okta.lookupUser), 1);
    expect(found[0]).toMatchObject({ id, userName: 'test.user@okta.local' });
    expectResource(await s.scim(oktaToken, 'GET', `/scim/v2/Users/${id}`), 200, 'User');
    const replaced = expectResource(
      await s.scim(oktaToken, 'PUT', `/scim/v2/Users/${id}`, okta.replaceUser(id)),
      200,
      'User',
    );
    expect(replaced).toMatchObject({ id, active: true, userName: 'test.user@okta.local' });
    // PUT without externalId clears it (a replace is the whole resource).
    expect(replaced.externalId).toBeUndefined();

    const deactivated = expectResource(
      await s.scim(oktaToken, 'PATCH', `/scim/v2/Users/${id}`, okta.deactivateUser),
      200,
      'User',
    );
    expect(deactivated.active).toBe(false);
    expect((await s.rig.t.store.users.get(id))?.disabled).toBe(true);
    expect(await s.rig.t.store.audit.list({ action: 'scim.user.disabled' })).toEqual([
      expect.objectContaining({ target: id, actorName: 'scim:Okta production' }),
    ]);
    // Another provider's client does not see it at all.
    expectScimError(await s.scim(entraToken, 'GET', `/scim/v2/Users/${id}`), 404);
  });

  it('pushes a group, adds a member, renames it and removes the member', async () => {
    const user = expectResource(
      await s.scim(oktaToken, 'POST', '/scim/v2/Users', {
        ...okta.createUser,
        userName: 'member@okta.local',
        externalId: 'x1',
      }),
      201,
      'User',
    );
    const userId = user.id as string;
    expectList(await s.scim(oktaToken, 'GET', okta.lookupGroup), 0);
    const group = expectResource(
      await s.scim(oktaToken, 'POST', '/scim/v2/Groups', okta.createGroup),
      201,
      'Group',
    );
    expect(group).toMatchObject({ displayName: 'Test SCIMv2', members: [] });
    const groupId = group.id as string;
    expectList(await s.scim(oktaToken, 'GET', okta.lookupGroup), 1);

    const add = await s.scim(oktaToken, 'PATCH', `/scim/v2/Groups/${groupId}`, okta.addMembers(userId));
    expect(add.statusCode, add.body).toBe(204);
    expect(await s.rig.t.store.groups.members(groupId)).toEqual([userId]);

    const rename = await s.scim(oktaToken, 'PATCH', `/scim/v2/Groups/${groupId}`, okta.renameGroup(groupId));
    expect(rename.statusCode, rename.body).toBe(204);
    const read = expectResource(await s.scim(oktaToken, 'GET', `/scim/v2/Groups/${groupId}`), 200, 'Group');
    expect(read).toMatchObject({
      displayName: 'Test SCIMv2 renamed',
      members: [{ value: userId, display: 'member@okta.local' }],
    });
    expect((await s.rig.t.store.groups.get(groupId))?.name).toBe('Test SCIMv2 renamed');

    const remove = await s.scim(oktaToken, 'PATCH', `/scim/v2/Groups/${groupId}`, okta.removeMember(userId));
    expect(remove.statusCode, remove.body).toBe(204);
    expect(await s.rig.t.store.groups.members(groupId)).toEqual([]);

    expect((await s.scim(oktaToken, 'DELETE', `/scim/v2/Groups/${groupId}`)).statusCode).toBe(204);
    expect(await s.rig.t.store.groups.get(groupId)).toBeUndefined();
    expect((await s.scim(oktaToken, 'DELETE', `/scim/v2/Users/${userId}`)).statusCode).toBe(204);
    expect(await s.rig.t.store.users.get(userId)).toBeUndefined();
    expectScimError(await s.scim(oktaToken, 'GET', `/scim/v2/Users/${userId}`), 404);
  });
});

describe('Entra ID', () => {
  it('creates a user, finds it by userName in any case, updates the email with "Replace" and disables it', async () => {
    expectList(await s.scim(entraToken, 'GET', entra.lookupUser), 0);
    const created = expectResource(
      await s.scim(entraToken, 'POST', '/scim/v2/Users', entra.createUser),
      201,
      'User',
    );
    const id = created.id as string;
    // Cove user names are lower case; SCIM's userName is not case-exact, so the lookup still matches.
    expect(created.userName).toBe('test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1');
    expect(created.externalId).toBe('0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef');
    expect(expectList(await s.scim(entraToken, 'GET', entra.lookupUser), 1)[0]).toMatchObject({ id });
    expect(
      expectList(
        await s.scim(
          entraToken,
          'GET',
          `/scim/v2/Users?filter=${encodeURIComponent('externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"')}`,
        ),
        1,
      )[0],
    ).toMatchObject({ id });

    const updated = expectResource(
      await s.scim(entraToken, 'PATCH', `/scim/v2/Users/${id}`, entra.updateUser),
      200,
      'User',
    );
    expect(updated.emails).toEqual([{ value: 'updatedEmail@microsoft.com', type: 'work', primary: true }]);

    const disabled = expectResource(
      await s.scim(entraToken, 'PATCH', `/scim/v2/Users/${id}`, entra.disableUser),
      200,
      'User',
    );
    expect(disabled.active).toBe(false);
    const enabled = await s.scim(entraToken, 'PATCH', `/scim/v2/Users/${id}`, {
      ...entra.disableUser,
      Operations: [{ op: 'Replace', path: 'active', value: 'True' }],
    });
    expect(json(enabled).active).toBe(true);
    expect(
      json(await s.scim(entraToken, 'PATCH', `/scim/v2/Users/${id}`, entra.disableUserAsString)).active,
    ).toBe(false);
  });

  it('creates a group with its extension URN, finds it without members, adds and removes a member', async () => {
    const user = expectResource(
      await s.scim(entraToken, 'POST', '/scim/v2/Users', {
        ...entra.createUser,
        userName: 'entra-member',
        externalId: 'e1',
      }),
      201,
      'User',
    );
    const userId = user.id as string;
    const group = expectResource(
      await s.scim(entraToken, 'POST', '/scim/v2/Groups', entra.createGroup),
      201,
      'Group',
    );
    const groupId = group.id as string;
    expect(group).toMatchObject({
      displayName: 'displayName',
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
    });
    const [listed] = expectList(await s.scim(entraToken, 'GET', entra.lookupGroup), 1);
    expect(listed).toMatchObject({ id: groupId, displayName: 'displayName' });
    expect(listed).not.toHaveProperty('members');

    expect(
      (await s.scim(entraToken, 'PATCH', `/scim/v2/Groups/${groupId}`, entra.addMember(userId))).statusCode,
    ).toBe(204);
    expect(await s.rig.t.store.groups.members(groupId)).toEqual([userId]);
    expect(
      (await s.scim(entraToken, 'PATCH', `/scim/v2/Groups/${groupId}`, entra.removeMember(userId)))
        .statusCode,
    ).toBe(204);
    expect(await s.rig.t.store.groups.members(groupId)).toEqual([]);
  });
});

describe('what SCIM changes in Cove', () => {
  it('active=false ends the user’s sessions and closes their open terminal with 4401 at once', async () => {
    const created = json(
      await s.scim(entraToken, 'POST', '/scim/v2/Users', {
        ...entra.createUser,
        userName: 'leaver',
        externalId: 'l1',
      }),
    );
    const id = created.id as string;
    // As if the user had signed in through Entra: a full session of theirs.
    const { token } = await s.rig.t.app.sessions.create(id, 'full');
    const leaver = { id, username: 'leaver', token, cookie: `${s.rig.t.app.sessionCookieName}=${token}` };
    const terminal = await s.rig.connect(leaver, await s.rig.createTerminal(leaver));
    await ready(terminal);

    const patch = await s.scim(entraToken, 'PATCH', `/scim/v2/Users/${id}`, entra.disableUser);
    expect(patch.statusCode, patch.body).toBe(200);
    // Gone by the time the answer arrives: nothing waits for the periodic re-check.
    expect(await s.rig.t.store.sessions.get(hashToken(token))).toBeUndefined();
    expect((await terminal.closed).code).toBe(CloseCode.notAuthenticated);
    expect((await s.rig.request(leaver, 'GET', '/api/me')).statusCode).toBe(401);
    expect(s.rig.t.app.terminals.list(id)).toEqual([]);
  });

  it('refuses a userName a local user has (409 uniqueness), audited, and never merges', async () => {
    const local = await s.rig.user('localname');
    const r = await s.scim(oktaToken, 'POST', '/scim/v2/Users', {
      ...okta.createUser,
      userName: local.username,
    });
    expectScimError(r, 409, 'uniqueness');
    expect(await s.rig.t.store.users.get(local.id)).toMatchObject({ source: 'local', disabled: false });
    expectList(
      await s.scim(
        oktaToken,
        'GET',
        `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${local.username}"`)}`,
      ),
      0,
    );
    const refusals = await s.rig.t.store.audit.list({ action: 'scim.refused' });
    expect(refusals[0]).toMatchObject({
      actorName: 'scim:Okta production',
      details: expect.objectContaining({ reason: 'uniqueness', status: 409 }),
    });
    // A look-alike of a local name is refused the same way.
    const lookalike = await s.scim(oktaToken, 'POST', '/scim/v2/Users', {
      ...okta.createUser,
      userName: local.username.replace('o', 'о'),
    });
    expectScimError(lookalike, 409, 'uniqueness');
  });

  it('pages a list with startIndex and count (count capped at 100)', async () => {
    const token = (await s.token('okta', 'paging')).secret;
    for (const n of [1, 2, 3])
      expect(
        (
          await s.scim(token, 'POST', '/scim/v2/Users', {
            ...okta.createUser,
            userName: `page-${n}`,
            externalId: `p${n}`,
          })
        ).statusCode,
      ).toBe(201);
    const all = json(await s.scim(token, 'GET', '/scim/v2/Users'));
    const total = all.totalResults as number;
    expect(total).toBeGreaterThanOrEqual(3);
    const page = json(await s.scim(token, 'GET', '/scim/v2/Users?startIndex=2&count=2'));
    expect(page).toMatchObject({ totalResults: total, startIndex: 2, itemsPerPage: 2 });
    expect((page.Resources as { id: string }[]).map((r) => r.id)).toEqual(
      (all.Resources as { id: string }[]).slice(1, 3).map((r) => r.id),
    );
    expect(json(await s.scim(token, 'GET', '/scim/v2/Users?count=0'))).toMatchObject({
      totalResults: total,
      itemsPerPage: 0,
    });
    expect(json(await s.scim(token, 'GET', '/scim/v2/Users?count=100000')).itemsPerPage).toBeLessThanOrEqual(
      100,
    );
  });

  it('describes itself: ServiceProviderConfig, ResourceTypes and Schemas', async () => {
    const config = json(await s.scim(oktaToken, 'GET', '/scim/v2/ServiceProviderConfig'));
    expect(config).toMatchObject({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
      patch: { supported: true },
      bulk: { supported: false },
      filter: { supported: true, maxResults: 100 },
      authenticationSchemes: [expect.objectContaining({ type: 'oauthbearertoken' })],
    });
    const types = expectList(await s.scim(oktaToken, 'GET', '/scim/v2/ResourceTypes'), 2);
    expect(types.map((t) => [t.id, t.endpoint])).toEqual([
      ['User', '/Users'],
      ['Group', '/Groups'],
    ]);
    const schemas = expectList(await s.scim(oktaToken, 'GET', '/scim/v2/Schemas'), 2);
    expect(schemas.map((x) => x.id)).toEqual([
      'urn:ietf:params:scim:schemas:core:2.0:User',
      'urn:ietf:params:scim:schemas:core:2.0:Group',
    ]);
    const user = json(
      await s.scim(oktaToken, 'GET', '/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User'),
    );
    expect((user.attributes as { name: string }[]).map((a) => a.name)).toContain('userName');
  });
});

describe('SCIM tokens in the admin API', () => {
  it('shows a token once, lists it without its value, and a revoked one stops working', async () => {
    const { id, secret } = await s.token('okta', 'rotating');
    expect(secret).toMatch(/^cove_scim_[A-Za-z0-9_-]{43}$/);
    expect((await s.scim(secret, 'GET', '/scim/v2/Users')).statusCode).toBe(200);
    const list = await s.rig.request(s.admin, 'GET', '/api/admin/scim-tokens');
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain(secret);
    expect(
      list.json<{ id: string; lastUsedAt: string | null }[]>().find((t) => t.id === id)?.lastUsedAt,
    ).not.toBeNull();
    const revoke = await s.rig.request(s.admin, 'POST', `/api/admin/scim-tokens/${id}/revoke`);
    expect(revoke.statusCode, revoke.body).toBe(200);
    expect(revoke.json<{ revokedAt: string | null }>().revokedAt).not.toBeNull();
    expectScimError(await s.scim(secret, 'GET', '/scim/v2/Users'), 401);
    expect((await s.rig.request(s.admin, 'POST', `/api/admin/scim-tokens/${id}/revoke`)).statusCode).toBe(
      409,
    );
    expect((await s.rig.t.store.audit.list({ action: 'admin.scim_token.revoked' }))[0]?.target).toBe(id);
  });

  it('refuses a token for an identity provider Cove does not have, and non-administrators', async () => {
    const bad = await s.rig.request(s.admin, 'POST', '/api/admin/scim-tokens', {
      name: 'x',
      providerId: 'nope',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ message: string }>().message).toContain('okta, entra');
    const someone = await s.rig.user('someone');
    expect((await s.rig.request(someone, 'GET', '/api/admin/scim-tokens')).statusCode).toBe(403);
  });
});

describe('the admin console’s side', () => {
  it('shows which SCIM token provisioned a user, and refuses to give them a local password', async () => {
    const created = json(
      await s.scim(oktaToken, 'POST', '/scim/v2/Users', {
        ...okta.createUser,
        userName: 'no-password',
        externalId: 'np',
      }),
    );
    const id = created.id as string;
    const users = (await s.rig.request(s.admin, 'GET', '/api/admin/users')).json<
      { id: string; source: string; provisionedBy: string | null }[]
    >();
    expect(users.find((u) => u.id === id)).toMatchObject({
      source: 'oidc:okta',
      provisionedBy: 'Okta production',
    });
    expect(users.find((u) => u.id === s.admin.id)).toMatchObject({ source: 'local', provisionedBy: null });
    const reset = await s.rig.request(s.admin, 'POST', `/api/admin/users/${id}/reset-password`, {});
    expect(reset.statusCode, reset.body).toBe(409);
    expect(reset.json()).toMatchObject({ code: 'COVE_ERR_DIRECTORY_FEDERATED_PASSWORD' });
    expect(reset.json<{ message: string }>().message).toContain(
      'Reset their password at the identity provider',
    );
    expect(await s.rig.t.store.users.get(id)).toMatchObject({ passwordHash: null });
    expect(await s.rig.t.store.invites.pendingFor(id)).toBeUndefined();
  });

  it('lists identity providers and tests them: a working discovery and one that is down, each said plainly', async () => {
    const list = await s.rig.request(s.admin, 'GET', '/api/admin/identity-providers');
    expect(list.statusCode, list.body).toBe(200);
    const providers = list.json<{ id: string; users: number; lastSignInAt: string | null }[]>();
    expect(providers.map((p) => p.id)).toEqual(['okta', 'entra']);
    expect(providers[0]?.users).toBeGreaterThan(0);
    const up = await s.rig.request(s.admin, 'POST', '/api/admin/identity-providers/okta/test', {});
    expect(up.statusCode, up.body).toBe(200);
    expect(up.json()).toMatchObject({ ok: true, message: expect.stringContaining('Discovery works') });
    const down = await s.rig.request(s.admin, 'POST', '/api/admin/identity-providers/entra/test', {});
    expect(down.json()).toMatchObject({
      ok: false,
      message: expect.stringContaining('Cove could not use Entra ID'),
    });
    expect(
      (await s.rig.request(s.admin, 'POST', '/api/admin/identity-providers/nope/test', {})).statusCode,
    ).toBe(404);
    expect((await s.rig.t.store.audit.list({ action: 'admin.identity_provider.tested' })).length).toBe(2);
  });
});
