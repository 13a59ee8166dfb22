/**
 * Homes under pressure and across users (SECURITY-TESTS F08, I02, H05): a host that cannot hold a
 * new home refuses it with 507 and touches nothing that exists; users only ever reach their own
 * home; admin home routes need an admin; bad regions get 400 with the allowed list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { LoopHomeVolumes } from '../../sandbox/homes/home-volumes.js';
import type { AdminHome } from '../../server/protocol/api.js';
import {
  HomeTestServer,
  MiB,
  regionA,
  type HomeTestUser,
} from '../integration/server/homes/home-test-server.js';

describe('homes: capacity, ownership and admin access', () => {
  let server: HomeTestServer;
  let alice: HomeTestUser;
  let bob: HomeTestUser;
  let admin: HomeTestUser;

  beforeAll(async () => {
    // Far more reserve than any disk: every *new* home is over capacity.
    server = await HomeTestServer.start({ reserveBytes: 1024 ** 5 });
    alice = await server.user('alice');
    bob = await server.user('bob');
    admin = await server.user('root', { admin: true });
    // Alice's home exists from before (made without the reserve), like a home on a host that filled up since.
    await new LoopHomeVolumes({ root: join(server.dataDir, 'homes'), reserveBytes: 0 }).ensure(
      { ownerId: alice.id, region: regionA },
      96 * MiB,
    );
    await server.restart();
  });

  afterAll(async () => {
    await server?.destroy();
  });

  it('F08 refuses a new home with 507 COVE_ERR_HOME_CAPACITY, creating nothing, while existing homes keep working', async () => {
    const refused = await server.request(bob, 'POST', `/api/environments/${regionA}/terminals`, {});
    expect(refused.statusCode).toBe(507);
    expect(refused.json()).toEqual({
      code: 'COVE_ERR_HOME_CAPACITY',
      message: 'The server is out of space for new homes; ask your administrator.',
    });
    expect(refused.body).not.toMatch(/free|needed|\/tmp|homes\//);
    expect(await server.volumes.exists({ ownerId: bob.id, region: regionA })).toBe(false);
    expect((await server.app.environments.status({ ownerId: bob.id, region: regionA })).state).toBe(
      'missing',
    );
    expect(server.app.terminals.list(bob.id)).toHaveLength(0);

    const shell = await server.shell(alice);
    expect(await server.run(shell, 'echo alive-$((2+3)) > ~/f; cat ~/f')).toContain('alive-5');
    shell.close();
  });

  it("I02 answers only with the caller's own environment and home; another user's stays untouched", async () => {
    const mine = await server.request(alice, 'GET', `/api/environments/${regionA}`);
    expect(mine.json<{ home: unknown }>().home).not.toBeNull();
    const theirs = await server.request(bob, 'GET', `/api/environments/${regionA}`);
    expect(theirs.json()).toEqual({ status: 'missing', home: null });
    // Bob's delete and restart act on Bob's (empty) environment, never on Alice's.
    const deleted = await server.request(bob, 'DELETE', `/api/environments/${regionA}/home`, {
      confirm: 'delete',
    });
    expect(deleted.json()).toEqual({ deleted: false, terminalsClosed: 0 });
    await server.request(bob, 'POST', `/api/environments/${regionA}/restart`, {});
    expect(await server.volumes.exists({ ownerId: alice.id, region: regionA })).toBe(true);
  });

  it('H05 refuses malformed and unknown regions with 400 and the allowed list', async () => {
    for (const region of ['xx-fake-1', 'us-east-1%2F..%2Fx', 'US-EAST-1']) {
      const response = await server.request(alice, 'GET', `/api/environments/${region}`);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ regions: server.config.regions.map((r) => r.id) });
    }
  });

  it('I02 keeps the admin home routes to admins, and the admin delete needs the confirmation too', async () => {
    expect((await server.request(alice, 'GET', '/api/admin/homes')).statusCode).toBe(403);
    const forbidden = await server.request(alice, 'DELETE', `/api/admin/homes/${alice.id}/${regionA}`, {
      confirm: 'delete',
    });
    expect(forbidden.statusCode).toBe(403);
    const list = await server.request(admin, 'GET', '/api/admin/homes');
    expect(list.statusCode).toBe(200);
    const rows = list.json<AdminHome[]>();
    expect(rows).toEqual([
      expect.objectContaining({
        userId: alice.id,
        username: alice.username,
        region: regionA,
        sizeBytes: 96 * MiB,
      }),
    ]);
    expect(rows[0]?.usedBytes).toBeGreaterThan(0);
    expect(Date.parse(rows[0]?.expiresAt ?? '') - Date.parse(rows[0]?.lastUsedAt ?? '')).toBe(
      120 * 86_400_000,
    );

    const unconfirmed = await server.request(admin, 'DELETE', `/api/admin/homes/${alice.id}/${regionA}`, {});
    expect(unconfirmed.statusCode).toBe(400);
    const missing = await server.request(admin, 'DELETE', `/api/admin/homes/${bob.id}/${regionA}`, {
      confirm: 'delete',
    });
    expect(missing.statusCode).toBe(404);
    const crossSite = await server.app.inject({
      method: 'DELETE',
      url: `/api/admin/homes/${alice.id}/${regionA}`,
      headers: { origin: 'https://evil.example', cookie: admin.cookie, 'content-type': 'application/json' },
      payload: JSON.stringify({ confirm: 'delete' }),
    });
    expect(crossSite.statusCode).toBe(403);
    expect(await server.volumes.exists({ ownerId: alice.id, region: regionA })).toBe(true);

    const done = await server.request(admin, 'DELETE', `/api/admin/homes/${alice.id}/${regionA}`, {
      confirm: 'delete',
    });
    expect(done.statusCode, done.body).toBe(200);
    expect(await server.volumes.exists({ ownerId: alice.id, region: regionA })).toBe(false);
    const entries = await server.store.audit.list({ action: 'admin.home.delete' });
    expect(entries[0]).toMatchObject({ actorId: admin.id, target: `home:${regionA}:${alice.id}` });
  });
});
