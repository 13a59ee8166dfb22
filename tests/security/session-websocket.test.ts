/**
 * SECURITY-TESTS H06 (expired or forged cookies on API, page and open WebSocket), A05 (logout
 * closes every socket of that session) and A06, terminal part (admin disable, group membership
 * removal, assignment removal close what is no longer allowed). The sandbox is the fake driver;
 * the same A06 case against real containers is in container-isolation.test.ts. The session
 * re-check runs every second here (COVE_AUTH_SESSION_RECHECK_S; 30 s in production).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, newToken } from '../../server/auth/session-service.js';
import { CloseCode } from '../../server/protocol/terminal-wire.js';
import { origin, ready, region, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';

const account = '111122223333';
let rig: SecurityRig;
let admin: RigUser;
let bob: RigUser;

beforeAll(async () => {
  rig = await startSecurityRig({ auth: { sessionRecheckS: 1 } });
  admin = await rig.user('admin', { admin: true });
  bob = await rig.user('bob');
  const created = await rig.request(admin, 'POST', '/api/admin/accounts', {
    accountId: account,
    name: 'Prod',
  });
  expect(created.statusCode, created.body).toBe(201);
});
afterAll(async () => {
  await rig?.close();
});

/** A session row written straight into the store (expired ones cannot be made through sign-in). */
async function sessionExpiringAt(userId: string, expiresAt: number): Promise<string> {
  const token = newToken();
  await rig.t.store.sessions.create({
    idHash: hashToken(token),
    userId,
    stage: 'full',
    createdAt: Date.now(),
    expiresAt,
  });
  return `${rig.t.app.sessionCookieName}=${token}`;
}

/** Bob's probe: his own terminal still echoes (the "other user" in every case). */
async function bobStillWorks(): Promise<void> {
  const client = await rig.connect(bob, await rig.createTerminal(bob));
  await ready(client);
  client.send('bob-probe\r');
  await client.waitForText('bob-probe');
  client.close();
}

describe('H06 expired or forged cookies', () => {
  it('H06 an expired or forged cookie gets 401 JSON on the API and a 302 to a local login page', async () => {
    const alice = await rig.user('alice');
    const expired = await sessionExpiringAt(alice.id, Date.now() - 1000);
    for (const cookie of [expired, `${rig.t.app.sessionCookieName}=forged-${newToken()}`]) {
      const api = await rig.t.app.inject({ method: 'GET', url: '/api/me', headers: { cookie } });
      expect(api.statusCode).toBe(401);
      expect(api.json()).toEqual({
        code: 'COVE_ERR_AUTH_REQUIRED',
        message: expect.stringMatching(/sign in/i) as unknown as string,
      });
      const create = await rig.t.app.inject({
        method: 'POST',
        url: `/api/environments/${region}/terminals`,
        headers: { cookie, origin, 'content-type': 'application/json' },
        payload: '{}',
      });
      expect(create.statusCode).toBe(401);
      for (const page of ['/', `/shell/${region}`, '/admin']) {
        const res = await rig.t.app.inject({ method: 'GET', url: page, headers: { cookie } });
        expect(res.statusCode, page).toBe(302);
        const next = new URL(res.headers.location as string, 'http://x').searchParams.get('next') ?? '';
        expect(next, page).toBe(page);
        expect(next.startsWith('/') && !next.startsWith('//')).toBe(true);
      }
    }
    // Nothing was started for the refused create.
    expect(rig.driver.calls.filter((c) => c.includes(alice.id))).toEqual([]);
    await rig.expectHealthy();
  });

  it('H06 an open WebSocket closes with 4401 when its session expires', async () => {
    const alice = await rig.user('alice');
    const id = await rig.createTerminal(alice);
    const shortLived = { ...alice, cookie: await sessionExpiringAt(alice.id, Date.now() + 1500) };
    const client = await rig.connect(shortLived, id);
    await ready(client);
    const closed = await client.closed;
    expect(closed.code).toBe(CloseCode.notAuthenticated);
    expect(closed.reason).toMatch(/sign in again/i);
    // The terminal itself lives on for its grace: signing in again gets the same shell back.
    const again = await rig.connect(alice, id);
    again.send('still-here\r');
    await again.waitForText('still-here');
    again.close();
    await bobStillWorks();
  });

  it('H06 a session deleted behind the server’s back (no event) closes its socket within the re-check interval', async () => {
    const alice = await rig.user('alice');
    const client = await rig.connect(alice, await rig.createTerminal(alice));
    await ready(client);
    // As another instance or an operator would: straight in the database, no in-process event.
    await rig.t.store.sessions.delete(hashToken(alice.token));
    const closed = await client.closed;
    expect(closed.code).toBe(CloseCode.notAuthenticated);
    expect((await rig.request(alice, 'GET', '/api/me')).statusCode).toBe(401);
    await bobStillWorks();
  });
});

describe('A05 logout', () => {
  it('A05 logout closes every WebSocket of that session with 4401, not another session’s, and the replayed cookie is 401', async () => {
    const alice = await rig.user('alice');
    const tab1 = await rig.connect(alice, await rig.createTerminal(alice));
    const tab2 = await rig.connect(alice, await rig.createTerminal(alice));
    await Promise.all([ready(tab1), ready(tab2)]);
    // Alice on her laptop too: a second session, which this logout must leave alone.
    const laptop = {
      ...alice,
      ...(await (async () => {
        const { token } = await rig.t.app.sessions.create(alice.id, 'full');
        return { token, cookie: `${rig.t.app.sessionCookieName}=${token}` };
      })()),
    };
    const other = await rig.connect(laptop, await rig.createTerminal(laptop));
    await ready(other);

    const logout = await rig.request(alice, 'POST', '/api/auth/logout');
    expect(logout.statusCode).toBe(204);
    const [c1, c2] = await Promise.all([tab1.closed, tab2.closed]);
    expect(c1.code).toBe(CloseCode.notAuthenticated);
    expect(c2.code).toBe(CloseCode.notAuthenticated);

    expect((await rig.request(alice, 'GET', '/api/me')).statusCode).toBe(401);
    const replay = await rig.request(alice, 'POST', `/api/environments/${region}/terminals`, {});
    expect(replay.statusCode).toBe(401);
    expect(replay.headers['set-cookie']).toBeUndefined();
    const reopen = await rig.connect(laptop, await rig.createTerminal(laptop));
    await ready(reopen);
    other.send('laptop-alive\r');
    await other.waitForText('laptop-alive');
    const entries = await rig.t.store.audit.list({ action: 'auth.logout' });
    expect(entries.some((e) => e.target === alice.id)).toBe(true);
    other.close();
    reopen.close();
    await rig.expectHealthy();
  });
});

describe('A06 admin takes access away while a shell is open (terminal part)', () => {
  it('A06 removing a group membership or an assignment closes the bound terminals (4403), not the others', async () => {
    const alice = await rig.user('alice');
    const group = await rig.request(admin, 'POST', '/api/admin/groups', {
      name: `Devs-${alice.id.slice(0, 6)}`,
    });
    const groupId = group.json<{ id: string }>().id;
    expect(
      (await rig.request(admin, 'PUT', `/api/admin/groups/${groupId}/members`, { userIds: [alice.id] }))
        .statusCode,
    ).toBe(200);
    const viaGroup = await rig.request(admin, 'POST', '/api/admin/assignments', {
      principalType: 'group',
      principalId: groupId,
      accountId: account,
      permissionSet: 'ReadOnlyAccess',
    });
    expect(viaGroup.statusCode, viaGroup.body).toBe(201);
    const direct = await rig.request(admin, 'POST', '/api/admin/assignments', {
      principalType: 'user',
      principalId: alice.id,
      accountId: account,
      permissionSet: 'PowerUserAccess',
    });
    expect(direct.statusCode, direct.body).toBe(201);

    const readOnlyId = await rig.createTerminal(alice, {
      accountId: account,
      permissionSet: 'ReadOnlyAccess',
    });
    const powerId = await rig.createTerminal(alice, { accountId: account, permissionSet: 'PowerUserAccess' });
    const plainId = await rig.createTerminal(alice);
    const readOnly = await rig.connect(alice, readOnlyId);
    const power = await rig.connect(alice, powerId);
    const plain = await rig.connect(alice, plainId);
    await Promise.all([ready(readOnly), ready(power), ready(plain)]);

    expect(
      (await rig.request(admin, 'PUT', `/api/admin/groups/${groupId}/members`, { userIds: [] })).statusCode,
    ).toBe(200);
    const closed = await readOnly.closed;
    expect(closed.code).toBe(CloseCode.forbidden);
    expect(closed.reason).toContain('ReadOnlyAccess');
    const ids = () => rig.t.app.terminals.list(alice.id).map((t) => t.id);
    expect(ids()).not.toContain(readOnlyId);
    expect(ids()).toEqual(expect.arrayContaining([powerId, plainId]));
    const again = await rig.request(alice, 'POST', `/api/environments/${region}/terminals`, {
      accountId: account,
      permissionSet: 'ReadOnlyAccess',
    });
    expect(again.statusCode).toBe(403);
    expect(again.json()).toMatchObject({ code: 'COVE_ERR_TERMINAL_ACCESS' });

    const assignmentId = direct.json<{ id: string }>().id;
    expect((await rig.request(admin, 'DELETE', `/api/admin/assignments/${assignmentId}`)).statusCode).toBe(
      204,
    );
    expect((await power.closed).code).toBe(CloseCode.forbidden);
    expect(ids()).toEqual([plainId]);

    // The shell without an account binding is untouched, and so is Bob.
    plain.send('plain-alive\r');
    await plain.waitForText('plain-alive');
    await bobStillWorks();
    expect((await rig.t.store.audit.list({ action: 'admin.assignment.delete' })).length).toBeGreaterThan(0);
    expect((await rig.t.store.audit.list({ action: 'admin.group.members' })).length).toBeGreaterThan(0);
    plain.close();
  });

  it('A06 disabling a user closes every socket (4401) and terminal of theirs and stops the environment', async () => {
    const alice = await rig.user('alice');
    const first = await rig.connect(alice, await rig.createTerminal(alice));
    const second = await rig.connect(alice, await rig.createTerminal(alice));
    await Promise.all([ready(first), ready(second)]);
    const patch = await rig.request(admin, 'PATCH', `/api/admin/users/${alice.id}`, { disabled: true });
    expect(patch.statusCode, patch.body).toBe(200);
    const [a, b] = await Promise.all([first.closed, second.closed]);
    expect(a.code).toBe(CloseCode.notAuthenticated);
    expect(b.code).toBe(CloseCode.notAuthenticated);
    expect(rig.t.app.terminals.list(alice.id)).toEqual([]);
    await first.waitFor(() => rig.driver.calls.includes(`stop ${region}/${alice.id}`), 'environment stop');
    expect(rig.driver.calls).not.toContain(`remove ${region}/${alice.id}`);
    expect((await rig.request(alice, 'GET', '/api/me')).statusCode).toBe(401);
    expect(
      (await rig.t.store.audit.list({ action: 'admin.user.disable' })).some((e) =>
        e.target?.includes(alice.id),
      ),
    ).toBe(true);
    await bobStillWorks();
    await rig.expectHealthy();
  });
});
