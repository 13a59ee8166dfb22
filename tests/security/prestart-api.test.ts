/**
 * Attack cases for starting a group's environments ahead of a lesson (POST
 * /api/admin/groups/:groupId/prestart, GET /api/admin/prestarts/:id). The guards every admin route
 * shares (I02 401/403, A03, H07) are in admin-api.test.ts and csrf-matrix.test.ts, whose route
 * lists include these two. Here: what an administrator's own bad input does, and that a pre-start
 * starts only the group's enabled members — never anyone else's environment.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PrestartProgress } from '../../server/protocol/api.js';
import { region, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';

let rig: SecurityRig;
let admin: RigUser;
let member: RigUser;
let disabled: RigUser;
let outsider: RigUser;
let groupId: string;

const ensured = () => rig.driver.calls.filter((c) => c.startsWith('ensure'));
const prestartUrl = (id = groupId) => `/api/admin/groups/${id}/prestart`;

beforeAll(async () => {
  rig = await startSecurityRig();
  admin = await rig.user('admin', { admin: true });
  member = await rig.user('member');
  disabled = await rig.user('disabled');
  outsider = await rig.user('outsider');
  groupId = (await rig.request(admin, 'POST', '/api/admin/groups', { name: 'Lesson' })).json<{ id: string }>()
    .id;
  await rig.request(admin, 'PUT', `/api/admin/groups/${groupId}/members`, {
    userIds: [member.id, disabled.id],
  });
  await rig.request(admin, 'PATCH', `/api/admin/users/${disabled.id}`, { disabled: true });
});
afterAll(async () => {
  await rig?.close();
});

describe('P01 pre-start: bad input from an administrator', () => {
  it.each([
    ['an unknown group', 'no-such-group', { region }, 404],
    ['an unknown region', undefined, { region: 'mars-1' }, 400],
    ['no region', undefined, {}, 400],
    ['a region of 10 kB', undefined, { region: 'r'.repeat(10_000) }, 400],
  ])('refuses %s with a clear error and starts nothing', async (_name, group, body, status) => {
    const before = ensured().length;
    const response = await rig.request(admin, 'POST', prestartUrl(group), body);
    expect(response.statusCode, response.body).toBe(status);
    expect(response.json<{ code: string; message: string }>().message.length).toBeGreaterThan(10);
    expect(response.body).not.toMatch(/\.ts:\d+|at [A-Za-z]+ \(/);
    expect(ensured().length).toBe(before);
  });

  it('answers 404 for a pre-start id it does not know, without echoing it', async () => {
    const probe = '../../etc/passwd';
    const response = await rig.request(admin, 'GET', `/api/admin/prestarts/${encodeURIComponent(probe)}`);
    expect(response.statusCode).toBe(404);
    expect(response.body).not.toContain('passwd');
  });
});

describe('P01 pre-start: whom it starts', () => {
  it("starts the group's enabled members only, never a disabled member or anyone outside the group, and audits it", async () => {
    const response = await rig.request(admin, 'POST', prestartUrl(), { region });
    expect(response.statusCode, response.body).toBe(202);
    const first = response.json<PrestartProgress>();
    expect(first).toMatchObject({ groupName: 'Lesson', region, total: 1 });
    await vi.waitFor(async () => {
      const poll = await rig.request(admin, 'GET', `/api/admin/prestarts/${first.id}`);
      expect(poll.json<PrestartProgress>()).toMatchObject({ done: true, started: 1, failed: 0 });
    });
    const started = ensured().join('\n');
    expect(started).toContain(member.id);
    expect(started).not.toContain(disabled.id);
    expect(started).not.toContain(outsider.id);
    const audit = await rig.t.store.audit.list({ limit: 20 });
    expect(audit.map((e) => e.action)).toContain('admin.environments.prestart');
  });

  it('two pre-starts of the same group and region at once are one', async () => {
    const late = await rig.user('late');
    const group = (await rig.request(admin, 'POST', '/api/admin/groups', { name: 'Late' })).json<{
      id: string;
    }>();
    await rig.request(admin, 'PUT', `/api/admin/groups/${group.id}/members`, { userIds: [late.id] });
    rig.driver.ensureDelayMs = 1000;
    try {
      const [a, b] = await Promise.all([
        rig.request(admin, 'POST', prestartUrl(group.id), { region }),
        rig.request(admin, 'POST', prestartUrl(group.id), { region }),
      ]);
      expect(a.statusCode).toBe(202);
      expect(b.statusCode).toBe(202);
      expect(a.json<PrestartProgress>().id).toBe(b.json<PrestartProgress>().id);
      await vi.waitFor(
        async () =>
          expect(
            (
              await rig.request(admin, 'GET', `/api/admin/prestarts/${a.json<PrestartProgress>().id}`)
            ).json<PrestartProgress>(),
          ).toMatchObject({ done: true, started: 1 }),
        { timeout: 5000 },
      );
      expect(ensured().filter((c) => c.includes(late.id))).toHaveLength(1);
    } finally {
      rig.driver.ensureDelayMs = 0;
    }
  });

  it("a start that fails is counted and named for the admin, without the engine's words", async () => {
    const unlucky = await rig.user('unlucky');
    const group = (await rig.request(admin, 'POST', '/api/admin/groups', { name: 'Unlucky' })).json<{
      id: string;
    }>();
    await rig.request(admin, 'PUT', `/api/admin/groups/${group.id}/members`, { userIds: [unlucky.id] });
    rig.driver.failEnsure = new Error('dial unix /var/run/docker.sock: secret-internal-detail');
    try {
      const id = (
        await rig.request(admin, 'POST', prestartUrl(group.id), { region })
      ).json<PrestartProgress>().id;
      let progress: PrestartProgress | undefined;
      await vi.waitFor(async () => {
        progress = (await rig.request(admin, 'GET', `/api/admin/prestarts/${id}`)).json<PrestartProgress>();
        expect(progress.done).toBe(true);
      });
      expect(progress).toMatchObject({ total: 1, started: 0, failed: 1 });
      expect(progress?.failures).toEqual([
        { username: unlucky.username, message: 'The environment could not be started; see the server log.' },
      ]);
    } finally {
      rig.driver.failEnsure = undefined;
    }
  });
});
