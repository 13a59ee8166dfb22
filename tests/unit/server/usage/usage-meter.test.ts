/**
 * The usage meter with a fake clock, a hand-driven list of running environments and a real
 * SQLite file: what a tick charges, to whom, in which week, and what is refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EnvironmentStatus } from '../../../../sandbox/sandbox-driver.js';
import { CoveError } from '../../../../server/errors.js';
import type { UsageView } from '../../../../server/protocol/api.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import { UsageMeter } from '../../../../server/usage/usage-meter.js';

const h = 3600;
const monday = Date.parse('2026-11-23T00:00:00Z');
const nextMonday = Date.parse('2026-11-30T00:00:00Z');

describe('UsageMeter', () => {
  let dir: string;
  let store: SqliteStore;
  let clock: number;
  let environments: EnvironmentStatus[];
  let exhausted: { userId: string; usage: UsageView }[];
  let alice: string;
  let bob: string;

  const meter = (tickS = 60, keepWeeks = 26) =>
    new UsageMeter({
      store,
      environments: { list: () => environments },
      tickS,
      keepWeeks,
      now: () => clock,
      log: pino({ level: 'silent' }),
      onExhausted: (userId, usage) => exhausted.push({ userId, usage }),
    });
  const run = (ownerId: string, region = 'us-east-1', startedAt?: number): void => {
    environments.push({
      ownerId,
      region,
      state: 'running',
      ...(startedAt !== undefined ? { startedAt: new Date(startedAt) } : {}),
    });
  };
  const stopAll = (ownerId: string): void => {
    environments = environments.map((e) => (e.ownerId === ownerId ? { ...e, state: 'stopped' } : e));
  };
  const used = (userId: string, weekStart = monday) => store.usage.get(userId, weekStart);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cove-usage-meter-'));
    store = new SqliteStore(join(dir, 'cove.db'));
    clock = Date.parse('2026-11-26T10:00:00Z');
    environments = [];
    exhausted = [];
    alice = (await store.users.create({ username: 'alice' })).id;
    bob = (await store.users.create({ username: 'bob' })).id;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('charges each tick to users whose environment runs, and nothing to the others', async () => {
    const m = meter();
    run(alice, 'us-east-1', clock - 5 * 60_000);
    environments.push({ ownerId: bob, region: 'us-east-1', state: 'stopped' });
    for (let i = 0; i < 3; i++) {
      clock += 60_000;
      await m.tick();
    }
    expect(await used(alice)).toBe(180);
    expect(await used(bob)).toBe(0);
    stopAll(alice);
    clock += 60_000;
    await m.tick();
    expect(await used(alice)).toBe(180);
  });

  it('counts wall time once per user when two regions run at the same time', async () => {
    const m = meter();
    run(alice, 'us-east-1', clock - 60_000);
    run(alice, 'eu-west-1', clock - 60_000);
    run(bob, 'us-east-1', clock - 60_000);
    clock += 10 * 60_000;
    await m.tick();
    expect(await used(alice)).toBe(600);
    expect(await used(bob)).toBe(600);
  });

  it('charges an environment that started between ticks from its start, not from the previous tick', async () => {
    const m = meter();
    clock += 60_000;
    await m.tick();
    run(alice, 'us-east-1', clock + 45_000);
    clock += 60_000;
    await m.tick();
    expect(await used(alice)).toBe(15);
    clock += 60_000;
    await m.tick();
    expect(await used(alice)).toBe(75);
  });

  it('charges from the tick when the start time is unknown or older (e.g. adopted after a restart)', async () => {
    const m = meter();
    run(alice);
    run(bob, 'us-east-1', clock - 3 * h * 1000);
    clock += 60_000;
    await m.tick();
    expect(await used(alice)).toBe(60);
    expect(await used(bob)).toBe(60);
  });

  it('carries sub-second remainders, so uneven ticks add up to the wall time', async () => {
    const m = meter();
    run(alice, 'us-east-1', clock - 1000);
    for (let i = 0; i < 10; i++) {
      clock += 1_500;
      await m.tick();
    }
    expect(await used(alice)).toBe(15);
  });

  it('splits a tick that crosses Monday 00:00 UTC between the two weeks', async () => {
    clock = nextMonday - 40_000;
    const m = meter();
    run(alice, 'us-east-1', clock - 60_000);
    clock = nextMonday + 20_000;
    await m.tick();
    expect(await used(alice, monday)).toBe(40);
    expect(await used(alice, nextMonday)).toBe(20);
    expect((await m.summary(alice)).usedS).toBe(20);
    expect((await m.summary(alice)).resetsAt).toBe('2026-12-07T00:00:00.000Z');
  });

  it('ignores a clock that stepped back until it passes the counted time again', async () => {
    const m = meter();
    run(alice, 'us-east-1', clock - 1000);
    clock -= 30_000;
    await m.tick();
    expect(await used(alice)).toBe(0);
    clock += 90_000;
    await m.tick();
    expect(await used(alice)).toBe(60);
  });

  it('keeps what it could not save and saves it with the next tick', async () => {
    const m = meter();
    run(alice, 'us-east-1', clock - 1000);
    const add = store.usage.add;
    let failures = 1;
    (store.usage as { add: typeof add }).add = (increments) =>
      failures-- > 0 ? Promise.reject(new Error('database is locked')) : add(increments);
    clock += 60_000;
    await m.tick();
    expect(await used(alice)).toBe(0);
    clock += 60_000;
    await m.tick();
    expect(await used(alice)).toBe(120);
  });

  it('saves the partial tick on close, and then no longer counts', async () => {
    const m = meter();
    run(alice, 'us-east-1', clock - 1000);
    clock += 25_000;
    await m.close();
    expect(await used(alice)).toBe(25);
    clock += 60_000;
    await m.tick();
    expect(await used(alice)).toBe(25);
  });

  it('drops the time of a user deleted since the tick began, without failing the others', async () => {
    const m = meter();
    run(alice, 'us-east-1', clock - 1000);
    run(bob, 'us-east-1', clock - 1000);
    await store.users.delete(bob);
    clock += 60_000;
    await m.tick();
    expect(await used(alice)).toBe(60);
    expect(await used(bob)).toBe(0);
  });

  it('prune keeps the last keepWeeks weeks and deletes older ones, as of the clock', async () => {
    const week = 7 * 24 * h * 1000;
    await store.usage.add(
      [0, 1, 2, 3].map((back) => ({ userId: alice, weekStart: monday - back * week, seconds: 100 + back })),
    );
    const m = meter(60, 3);
    clock += 60_000;
    // Ticks leave the old weeks alone: pruning is a periodic job of its own (one instance runs it).
    await m.tick();
    expect(await used(alice, monday - 3 * week)).toBe(103);
    expect(await m.prune()).toBe(1);
    // This week and the two before it stay; three weeks back is gone.
    expect(await used(alice, monday)).toBe(100);
    expect(await used(alice, monday - 2 * week)).toBe(102);
    expect(await used(alice, monday - 3 * week)).toBe(0);
    expect(await m.prune()).toBe(0);
    clock = nextMonday + 60_000;
    expect(await m.prune()).toBe(1);
    expect(await used(alice, monday - 2 * week)).toBe(0);
    expect(await used(alice, monday - week)).toBe(101);
  });

  it('keeps counting when deleting old weeks fails', async () => {
    const week = 7 * 24 * h * 1000;
    await store.usage.add([{ userId: alice, weekStart: monday - 30 * week, seconds: 7 }]);
    (store.usage as { prune: typeof store.usage.prune }).prune = () =>
      Promise.reject(new Error('database is locked'));
    const m = meter();
    run(alice, 'us-east-1', clock - 1000);
    await expect(m.prune()).rejects.toThrow('database is locked');
    clock += 60_000;
    await m.tick();
    expect(await used(alice)).toBe(60);
    expect(await used(alice, monday - 30 * week)).toBe(7);
  });

  describe('limits', () => {
    it('is unlimited without groups, and without a limit on any group', async () => {
      const m = meter();
      expect(await m.summary(alice)).toEqual({
        usedS: 0,
        limitS: null,
        resetsAt: '2026-11-30T00:00:00.000Z',
      });
      const open = await store.groups.create({ name: 'open' });
      const capped = await store.groups.create({ name: 'capped', weeklyUsageLimitS: 60 });
      await store.groups.addMember(open.id, alice);
      await store.groups.addMember(capped.id, alice);
      await store.usage.add([{ userId: alice, weekStart: monday, seconds: 10 * h }]);
      expect((await m.summary(alice)).limitS).toBeNull();
      await expect(m.assertTimeLeft(alice)).resolves.toBeUndefined();
    });

    it('refuses once the most generous group limit is used, saying when it resets', async () => {
      const m = meter();
      const students = await store.groups.create({ name: 'students', weeklyUsageLimitS: 50 * h });
      const lab = await store.groups.create({ name: 'lab', weeklyUsageLimitS: 10 * h });
      await store.groups.addMember(students.id, alice);
      await store.groups.addMember(lab.id, alice);
      await store.usage.add([{ userId: alice, weekStart: monday, seconds: 50 * h - 1 }]);
      await expect(m.assertTimeLeft(alice)).resolves.toBeUndefined();
      await store.usage.add([{ userId: alice, weekStart: monday, seconds: 1 }]);
      const error = await m.assertTimeLeft(alice).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CoveError);
      expect(error).toMatchObject({
        code: 'COVE_ERR_USAGE_QUOTA_EXHAUSTED',
        statusCode: 429,
        message: 'You have used your 50 h of shell time this week. It resets Mon 30 Nov 2026 00:00 UTC.',
        details: { usedS: 50 * h, limitS: 50 * h, resetsAt: '2026-11-30T00:00:00.000Z' },
      });
      // Thursday 10:00 to Monday 00:00: 3 days 14 hours.
      expect((error as CoveError).headers).toEqual({ 'retry-after': String(3 * 86_400 + 14 * h) });
    });

    it('starts every week from zero', async () => {
      const m = meter();
      const students = await store.groups.create({ name: 'students', weeklyUsageLimitS: h });
      await store.groups.addMember(students.id, alice);
      await store.usage.add([{ userId: alice, weekStart: monday, seconds: 2 * h }]);
      await expect(m.assertTimeLeft(alice)).rejects.toThrow(/resets Mon 30 Nov 2026/);
      clock = nextMonday;
      await expect(m.assertTimeLeft(alice)).resolves.toBeUndefined();
      expect((await m.summary(alice)).usedS).toBe(0);
    });

    it('says plainly when the groups give no shell time at all', async () => {
      const m = meter();
      const none = await store.groups.create({ name: 'suspended', weeklyUsageLimitS: 0 });
      await store.groups.addMember(none.id, alice);
      await expect(m.assertTimeLeft(alice)).rejects.toThrow('Your groups give you no shell time.');
    });

    it('reports the crossing of 100 % once, on the tick that crosses it', async () => {
      const m = meter();
      const students = await store.groups.create({ name: 'students', weeklyUsageLimitS: h });
      await store.groups.addMember(students.id, alice);
      await store.usage.add([{ userId: alice, weekStart: monday, seconds: h - 90 }]);
      run(alice, 'us-east-1', clock - 1000);
      run(bob, 'us-east-1', clock - 1000);
      clock += 60_000;
      await m.tick();
      expect(exhausted).toEqual([]);
      clock += 60_000;
      await m.tick();
      clock += 60_000;
      await m.tick();
      expect(exhausted).toEqual([
        { userId: alice, usage: { usedS: h + 30, limitS: h, resetsAt: '2026-11-30T00:00:00.000Z' } },
      ]);
    });
  });
});
