/**
 * The per-group home size through the admin API: created, changed, cleared, validated, audited,
 * and then used for a member's new home.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminGroup } from '../../../../server/protocol/api.js';
import { call, createUser, startAdminApp, type AdminTestContext } from '../directory/admin-client.js';

const MiB = 1024 ** 2;

describe('group home size (admin API)', () => {
  let ctx: AdminTestContext;
  const admin = (method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown) =>
    call(ctx.t, method, url, { cookie: ctx.adminCookie, ...(body === undefined ? {} : { body }) });

  beforeAll(async () => {
    ctx = await startAdminApp({ homes: { sizeBytes: 256 * MiB } });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  it('creates a group with a home size, changes and clears it, and audits each change', async () => {
    const created = await admin('POST', '/api/admin/groups', {
      name: 'class-2026',
      homeSizeBytes: 2048 * MiB,
    });
    expect(created.statusCode, created.body).toBe(201);
    const group = created.json<AdminGroup>();
    expect(group.homeSizeBytes).toBe(2048 * MiB);

    const changed = await admin('PATCH', `/api/admin/groups/${group.id}`, { homeSizeBytes: 512 * MiB });
    expect(changed.json<AdminGroup>().homeSizeBytes).toBe(512 * MiB);
    const student = await createUser(ctx.t, 'student');
    await ctx.t.store.groups.addMember(group.id, student);
    expect(await ctx.t.app.homes.sizeFor({ ownerId: student, region: 'us-east-1' })).toBe(512 * MiB);

    const cleared = await admin('PATCH', `/api/admin/groups/${group.id}`, { homeSizeBytes: null });
    expect(cleared.json<AdminGroup>().homeSizeBytes).toBeNull();
    expect(await ctx.t.app.homes.sizeFor({ ownerId: student, region: 'us-east-1' })).toBe(256 * MiB);

    const list = await admin('GET', '/api/admin/groups');
    expect(list.json<AdminGroup[]>().find((g) => g.id === group.id)?.homeSizeBytes).toBeNull();
    const audit = await ctx.t.store.audit.list({ action: 'admin.group.update' });
    expect(audit.map((e) => e.details.homeSizeBytes)).toEqual([null, 512 * MiB]);
  });

  it('reads 0 as "not set", like null (the validator coerces it)', async () => {
    const group = (
      await admin('POST', '/api/admin/groups', { name: 'zero', homeSizeBytes: 128 * MiB })
    ).json<AdminGroup>();
    const zero = await admin('PATCH', `/api/admin/groups/${group.id}`, { homeSizeBytes: 0 });
    expect(zero.json<AdminGroup>().homeSizeBytes).toBeNull();
  });

  it('refuses sizes below 64 MiB, fractions and text with 400, changing nothing', async () => {
    const created = await admin('POST', '/api/admin/groups', { name: 'lab' });
    const group = created.json<AdminGroup>();
    expect(group.homeSizeBytes).toBeNull();
    for (const homeSizeBytes of [1024, -1, 1.5 * MiB + 0.5, '1 GB'])
      expect((await admin('PATCH', `/api/admin/groups/${group.id}`, { homeSizeBytes })).statusCode).toBe(400);
    const list = await admin('GET', '/api/admin/groups');
    expect(list.json<AdminGroup[]>().find((g) => g.id === group.id)?.homeSizeBytes).toBeNull();
  });
});
