import { describe, expect, it } from 'vitest';
import { timedStore } from '../../../../server/metrics/timed-store.js';

interface Call {
  operation: string;
  seconds: number;
  failed: boolean;
}

function recorder(): { calls: Call[]; storeCall(operation: string, seconds: number, failed: boolean): void } {
  const calls: Call[] = [];
  return { calls, storeCall: (operation, seconds, failed) => calls.push({ operation, seconds, failed }) };
}

/** A store shaped like the real one: repositories with private state, store-level methods. */
class FakeUsers {
  #rows = new Map<string, string>([['u1', 'ada']]);
  async get(id: string): Promise<string | undefined> {
    await new Promise((resolve) => setTimeout(resolve, 20));
    return this.#rows.get(id);
  }
  async fail(): Promise<never> {
    throw new Error('disk I/O error');
  }
  syncThrow(): never {
    throw new Error('closed');
  }
}

class FakeStore {
  readonly users = new FakeUsers();
  readonly label = 'sqlite';
  #open = true;
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  async ping(): Promise<boolean> {
    return this.#open;
  }
}

describe('timedStore', () => {
  it('times each repository call as repository.method and keeps the real `this`', async () => {
    const metrics = recorder();
    const store = timedStore(new FakeStore(), metrics);
    expect(await store.users.get('u1')).toBe('ada');
    expect(await store.ping()).toBe(true);
    expect(metrics.calls.map((c) => [c.operation, c.failed])).toEqual([
      ['users.get', false],
      ['store.ping', false],
    ]);
    // The 20 ms the call took, in seconds (timers may fire a little early or late).
    expect(metrics.calls[0]?.seconds).toBeGreaterThan(0.015);
    expect(metrics.calls[0]?.seconds).toBeLessThan(1);
  });

  it('counts failures, rejected or thrown, and passes the error on unchanged', async () => {
    const metrics = recorder();
    const store = timedStore(new FakeStore(), metrics);
    await expect(store.users.fail()).rejects.toThrow('disk I/O error');
    expect(() => store.users.syncThrow()).toThrow('closed');
    expect(metrics.calls.map((c) => [c.operation, c.failed])).toEqual([
      ['users.fail', true],
      ['users.syncThrow', true],
    ]);
  });

  it('times a transaction and the calls inside it, which go through the decorator too', async () => {
    const metrics = recorder();
    const store = timedStore(new FakeStore(), metrics);
    const name = await store.transaction(() => store.users.get('u1'));
    expect(name).toBe('ada');
    // The inner call ends first; the transaction's time includes it.
    expect(metrics.calls.map((c) => c.operation)).toEqual(['users.get', 'store.transaction']);
    expect(metrics.calls[1]?.seconds).toBeGreaterThanOrEqual(metrics.calls[0]?.seconds ?? Infinity);
  });

  it('keeps repositories and methods stable and leaves plain values alone', () => {
    const store = timedStore(new FakeStore(), recorder());
    expect(store.users).toBe(store.users);
    expect(store.users.get).toBe(store.users.get);
    expect(store.label).toBe('sqlite');
  });

  it('calls a method replaced on the real object after its first use, not the one it wrapped first', async () => {
    const raw = new FakeStore();
    const metrics = recorder();
    const store = timedStore(raw, metrics);
    expect(await store.users.get('u1')).toBe('ada');
    raw.users.get = async () => 'replaced';
    expect(await store.users.get('u1')).toBe('replaced');
    expect(metrics.calls.map((c) => c.operation)).toEqual(['users.get', 'users.get']);
  });
});
