/**
 * The weekly shell-time quota end to end: a real app on a real SQLite file with a fake sandbox
 * driver and a hand-moved clock. The administrator sets a group's hours through the API, time
 * counts while environments run (once per user across regions), an exhausted user is refused
 * with the reset time and nothing starts, and the count survives a restart of the server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../../server/app.js';
import { adminGroupName } from '../../../../server/auth/auth-plugin.js';
import { buildConfig } from '../../../../server/config.js';
import { seedDirectory } from '../../../../server/directory/seed.js';
import type { AdminGroup, PortalResponse } from '../../../../server/protocol/api.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import type { EnvironmentSpec, EnvironmentStatus } from '../../../../sandbox/sandbox-driver.js';
import { FakeSandboxDriver } from '../../../unit/server/environments/fake-sandbox-driver.js';

const origin = 'http://127.0.0.1:8080';
const h = 3600;
const resetsAt = '2026-11-30T00:00:00.000Z';

let clock = Date.parse('2026-11-26T10:00:00Z');

/** The fake driver, with start times from the test's clock (the meter charges a new start from it). */
class ClockedSandboxDriver extends FakeSandboxDriver {
  override async ensure(spec: EnvironmentSpec): Promise<EnvironmentStatus> {
    const status = { ...(await super.ensure(spec)), startedAt: new Date(clock) };
    this.environments.set(`${spec.region}/${spec.ownerId}`, status);
    return status;
  }
}

describe('weekly usage quota (real SQLite, fake driver, fake clock)', () => {
  let dir: string;
  let store: SqliteStore;
  let app: FastifyInstance;
  // Survives the app: containers keep running while the server restarts.
  const driver = new ClockedSandboxDriver();
  const cookies: Record<string, string> = {};
  const ids: Record<string, string> = {};
  let groupId = '';

  const config = buildConfig({
    logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    regions: [
      { id: 'us-east-1', name: 'US East' },
      { id: 'eu-west-1', name: 'Europe' },
    ],
    homes: { enabled: false },
    // The clock moves by hours here; sessions must outlive it. The timer never fires: ticks are explicit.
    auth: { sessionTtlS: 60 * 86_400, argon2MemoryKiB: 1024, argon2TimeCost: 1 },
    usage: { tickS: 3600 },
  });

  const boot = async (): Promise<void> => {
    store = new SqliteStore(join(dir, 'cove.db'), () => clock);
    app = await buildApp({ config, store, now: () => clock, driverFactory: () => driver });
    await app.ready();
  };

  const call = (who: string, method: InjectOptions['method'], url: string, body?: unknown) =>
    app.inject({
      method,
      url,
      headers: {
        origin,
        cookie: cookies[who] as string,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
    });
  const portalUsage = async (who: string) => {
    const response = await call(who, 'GET', '/api/portal');
    expect(response.statusCode).toBe(200);
    return response.json<PortalResponse>().usage;
  };
  const openTerminal = (who: string, region = 'us-east-1') =>
    call(who, 'POST', `/api/environments/${region}/terminals`, {});
  const running = (who: string) =>
    app.environments.list().filter((e) => e.ownerId === ids[who] && e.state === 'running').length;
  const waitUntil = async (condition: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
    if (!condition()) throw new Error(`timed out waiting for ${what}`);
  };
  /** Moves the clock and lets the meter count, as its timer would. */
  const advance = async (ms: number): Promise<void> => {
    clock += ms;
    await app.usage.tick();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cove-usage-quota-'));
    await boot();
    await seedDirectory(app);
    for (const name of ['root', 'student', 'teacher']) {
      const user = await store.users.create({ username: name });
      ids[name] = user.id;
      const { token } = await app.sessions.create(user.id, 'full');
      cookies[name] = `${app.sessionCookieName}=${token}`;
    }
    const admins = await store.groups.getByName(adminGroupName);
    await store.groups.addMember(admins?.id ?? '', ids.root as string);
  });

  afterAll(async () => {
    await app?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is unlimited by default, and the portal says so', async () => {
    expect(await portalUsage('student')).toEqual({ usedS: 0, limitS: null, resetsAt });
  });

  it('lets an administrator set hours per week on a group, audited, and the portal shows them', async () => {
    const created = await call('root', 'POST', '/api/admin/groups', {
      name: 'students',
      weeklyUsageLimitS: 50 * h,
    });
    expect(created.statusCode).toBe(201);
    const group = created.json<AdminGroup>();
    expect(group.weeklyUsageLimitS).toBe(50 * h);
    groupId = group.id;
    expect(
      (await call('root', 'PUT', `/api/admin/groups/${groupId}/members`, { userIds: [ids.student] }))
        .statusCode,
    ).toBe(200);
    expect(await portalUsage('student')).toEqual({ usedS: 0, limitS: 50 * h, resetsAt });
    // Not a member: still unlimited.
    expect((await portalUsage('teacher')).limitS).toBeNull();

    const changed = await call('root', 'PATCH', `/api/admin/groups/${groupId}`, { weeklyUsageLimitS: h });
    expect(changed.json<AdminGroup>().weeklyUsageLimitS).toBe(h);
    expect((await portalUsage('student')).limitS).toBe(h);
    const listed = (await call('root', 'GET', '/api/admin/groups')).json<AdminGroup[]>();
    expect(listed.find((g) => g.id === groupId)?.weeklyUsageLimitS).toBe(h);

    const [update] = await store.audit.list({ action: 'admin.group.update' });
    expect(update?.details).toMatchObject({ name: 'students', weeklyUsageLimitS: h });
    const [create] = await store.audit.list({ action: 'admin.group.create' });
    expect(create?.details).toMatchObject({ name: 'students', weeklyUsageLimitS: 50 * h });
  });

  it('refuses limits that are negative, fractional, text or longer than a week, changing nothing', async () => {
    for (const weeklyUsageLimitS of [-1, 1.5, '2 h', 7 * 24 * h + 1]) {
      const response = await call('root', 'PATCH', `/api/admin/groups/${groupId}`, { weeklyUsageLimitS });
      expect(response.statusCode).toBe(400);
    }
    expect((await portalUsage('student')).limitS).toBe(h);
    // 0 is a real limit (no shell time), not "unset".
    const zero = await call('root', 'PATCH', `/api/admin/groups/${groupId}`, { weeklyUsageLimitS: 0 });
    expect(zero.json<AdminGroup>().weeklyUsageLimitS).toBe(0);
    // And null is unlimited, not 0.
    const cleared = await call('root', 'PATCH', `/api/admin/groups/${groupId}`, { weeklyUsageLimitS: null });
    expect(cleared.json<AdminGroup>().weeklyUsageLimitS).toBeNull();
    expect((await portalUsage('student')).limitS).toBeNull();
    const back = await call('root', 'PATCH', `/api/admin/groups/${groupId}`, { weeklyUsageLimitS: h });
    expect(back.json<AdminGroup>().weeklyUsageLimitS).toBe(h);
  });

  it('counts time while an environment runs, once per user when two regions run', async () => {
    expect((await openTerminal('student')).statusCode).toBe(201);
    await waitUntil(() => running('student') === 1, 'the environment to run');
    await advance(20 * 60_000);
    expect((await portalUsage('student')).usedS).toBe(20 * 60);

    expect((await openTerminal('student', 'eu-west-1')).statusCode).toBe(201);
    await waitUntil(() => running('student') === 2, 'the second region to run');
    await advance(20 * 60_000);
    expect((await portalUsage('student')).usedS).toBe(40 * 60);
    // Nobody else was charged.
    expect((await portalUsage('teacher')).usedS).toBe(0);
  });

  it('refuses an exhausted user with the reset time and starts nothing; running shells keep running', async () => {
    await advance(20 * 60_000);
    expect(await portalUsage('student')).toEqual({ usedS: h, limitS: h, resetsAt });
    const callsBefore = [...driver.calls];
    const terminalsBefore = app.terminals.list(ids.student as string).map((t) => t.id);
    expect(terminalsBefore).toHaveLength(2);

    const refused = await openTerminal('student');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({
      code: 'COVE_ERR_USAGE_QUOTA_EXHAUSTED',
      message: 'You have used your 1 h of shell time this week. It resets Mon 30 Nov 2026 00:00 UTC.',
      usedS: h,
      limitS: h,
      resetsAt,
    });
    // Thursday 11:00 to Monday 00:00.
    expect(refused.headers['retry-after']).toBe(String(3 * 86_400 + 13 * h));
    await new Promise((r) => setTimeout(r, 50));
    expect(driver.calls).toEqual(callsBefore);
    expect(app.terminals.list(ids.student as string).map((t) => t.id)).toEqual(terminalsBefore);
    expect(running('student')).toBe(2);

    // Another user is not affected.
    expect((await openTerminal('teacher')).statusCode).toBe(201);
    await waitUntil(() => running('teacher') === 1, "the teacher's environment to run");
  });

  it('lets the user in again when the administrator raises the limit', async () => {
    await call('root', 'PATCH', `/api/admin/groups/${groupId}`, { weeklyUsageLimitS: 2 * h });
    expect((await openTerminal('student')).statusCode).toBe(201);
    await call('root', 'PATCH', `/api/admin/groups/${groupId}`, { weeklyUsageLimitS: h });
  });

  it('keeps the count across a restart of the server, and starts again from zero on Monday', async () => {
    await advance(10 * 60_000);
    const before = await portalUsage('student');
    expect(before.usedS).toBe(h + 10 * 60);
    const teacherBefore = (await portalUsage('teacher')).usedS;
    expect(teacherBefore).toBe(10 * 60);

    // A graceful restart saves up to the last second.
    clock += 30_000;
    await app.close();
    await store.close();
    await boot();

    expect(await portalUsage('student')).toEqual({ ...before, usedS: before.usedS + 30 });
    expect((await portalUsage('teacher')).usedS).toBe(teacherBefore + 30);
    expect((await openTerminal('student')).statusCode).toBe(429);

    // The environments survived the restart (reconcile adopted them): they keep counting.
    expect(running('student')).toBe(2);
    await advance(60_000);
    expect((await portalUsage('student')).usedS).toBe(before.usedS + 90);

    clock = Date.parse(resetsAt) - 60_000;
    await app.usage.tick();
    await advance(2 * 60_000);
    expect(await portalUsage('student')).toEqual({
      usedS: 60,
      limitS: h,
      resetsAt: '2026-12-07T00:00:00.000Z',
    });
    expect((await openTerminal('student')).statusCode).toBe(201);
  });
});
