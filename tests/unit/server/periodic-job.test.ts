/**
 * PeriodicJob on two instances (two stores on one SQLite file, as two processes would have them)
 * with a clock the test moves: the body runs once per interval in all, and another instance takes
 * over when the holder stops renewing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PeriodicJob } from '../../../server/periodic-job.js';
import { SqliteStore } from '../../../server/store/sqlite-store.js';

const interval = 60_000;
const t0 = 1_800_000_000_000;

describe('PeriodicJob', () => {
  let dir: string;
  let stores: SqliteStore[];
  let clock: number;
  let runs: string[];
  let warnings: string[];

  const job = (holder: string, store = stores[0] as SqliteStore, run?: () => Promise<unknown>) =>
    new PeriodicJob({
      name: 'sweep',
      intervalMs: interval,
      store,
      holder,
      now: () => clock,
      log: { warn: (_obj: unknown, message?: string) => void warnings.push(message ?? '') },
      run:
        run ??
        (() => {
          runs.push(holder);
          return Promise.resolve();
        }),
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cove-job-'));
    stores = [new SqliteStore(join(dir, 'cove.db')), new SqliteStore(join(dir, 'cove.db'))];
    clock = t0;
    runs = [];
    warnings = [];
  });
  afterEach(async () => {
    vi.useRealTimers();
    for (const store of stores) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs once per interval across two instances ticking at different moments', async () => {
    const a = job('a', stores[0]);
    const b = job('b', stores[1]);
    for (let k = 0; k < 10; k++) {
      clock = t0 + k * interval;
      await a.tick();
      clock += interval / 3;
      await b.tick();
    }
    expect(runs).toEqual(Array(10).fill('a'));
  });

  it('moves to the other instance once the holder stops renewing and its lease has expired', async () => {
    const a = job('a', stores[0]);
    const b = job('b', stores[1]);
    const ranAt: [string, number][] = [];
    for (let k = 0; k < 10; k++) {
      clock = t0 + k * interval;
      // a hangs after its fifth run: no more ticks from it.
      if (k < 5 && (await a.tick())) ranAt.push(['a', clock]);
      clock += interval / 3;
      if (await b.tick()) ranAt.push(['b', clock]);
    }
    expect(ranAt.map(([holder]) => holder)).toEqual([...Array(5).fill('a'), ...Array(5).fill('b')]);
    // b's first run comes at its first tick after a's last lease (taken at 4 intervals) expired.
    expect(ranAt[5]?.[1]).toBe(t0 + 5 * interval + interval / 3);
    expect(runs).toHaveLength(10);
  });

  it('hands over at once when the holder closes, and never runs again after close', async () => {
    const a = job('a', stores[0]);
    const b = job('b', stores[1]);
    expect(await a.tick()).toBe(true);
    clock += 1_000;
    expect(await b.tick()).toBe(false);
    await a.close();
    expect(await b.tick()).toBe(true);
    expect(await a.tick()).toBe(false);
    expect(runs).toEqual(['a', 'b']);
  });

  it('does not overlap itself, logs a failing body, and skips a tick when the store cannot answer', async () => {
    let finish: () => void = () => undefined;
    let calls = 0;
    const slow = job('a', stores[0], () => {
      calls += 1;
      return new Promise<void>((resolve) => (finish = resolve));
    });
    const first = slow.tick();
    const second = slow.tick();
    await vi.waitFor(() => expect(calls).toBe(1));
    finish();
    expect(await Promise.all([first, second])).toEqual([true, true]);
    expect(calls).toBe(1);

    const failing = job('b', stores[1], () => Promise.reject(new Error('bucket gone')));
    clock += interval;
    expect(await failing.tick()).toBe(true);
    expect(warnings).toEqual(['periodic job failed; it runs again next interval']);
    await stores[1]?.close();
    clock += interval;
    expect(await failing.tick()).toBe(false);
    expect(warnings[1]).toBe('periodic job skipped: its lease could not be checked');
  });

  it('ticks on its own: first after the given delay, then every interval', async () => {
    vi.useFakeTimers({ now: t0, toFake: ['setTimeout', 'clearTimeout'] });
    const a = new PeriodicJob({
      name: 'timed',
      intervalMs: interval,
      firstTickAfterMs: 5_000,
      store: stores[0] as SqliteStore,
      holder: 'a',
      now: () => clock,
      log: { warn: () => undefined },
      run: () => {
        runs.push(`at ${clock - t0}`);
        return Promise.resolve();
      },
    });
    a.start();
    const advance = async (ms: number) => {
      clock += ms;
      await vi.advanceTimersByTimeAsync(ms);
    };
    await advance(4_999);
    expect(runs).toEqual([]);
    await advance(1);
    await vi.waitFor(() => expect(runs).toEqual(['at 5000']));
    await advance(interval);
    await vi.waitFor(() => expect(runs).toEqual(['at 5000', 'at 65000']));
    await a.close();
    await advance(3 * interval);
    expect(runs).toHaveLength(2);
  });
});
