import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PartGate, PartGateClosed, PartWaitTimeout, isGateStop } from '../../../../server/files/part-gate.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('PartGate', () => {
  it('lets a part through once it is opened, in any order', async () => {
    const gate = new PartGate(1000);
    const order: number[] = [];
    const second = gate.wait(2).then(() => order.push(2));
    const first = gate.wait(1).then(() => order.push(1));
    gate.open(2);
    await second;
    expect(order).toEqual([2]);
    gate.open(1);
    await first;
    expect(order).toEqual([2, 1]);
    // Already open: at once.
    await expect(gate.wait(2)).resolves.toBeUndefined();
  });

  it('openAll opens every part, also those never reported', async () => {
    const gate = new PartGate(1000);
    const waiting = gate.wait(7);
    gate.openAll();
    await expect(waiting).resolves.toBeUndefined();
    expect(gate.isOpen(9_999)).toBe(true);
  });

  it('gives up on a part that does not come within the idle time', async () => {
    const gate = new PartGate(1000);
    const waiting = gate.wait(3);
    const settled = expect(waiting).rejects.toBeInstanceOf(PartWaitTimeout);
    vi.advanceTimersByTime(999);
    gate.open(2);
    vi.advanceTimersByTime(1);
    await settled;
    await expect(waiting).rejects.toThrow('part 3 was not reported in time');
  });

  it('close fails the waiting and every later wait with the reason; both count as a gate stop', async () => {
    const gate = new PartGate(1000);
    const waiting = gate.wait(1);
    gate.close(new PartGateClosed('the upload was cancelled'));
    await expect(waiting).rejects.toThrow('the upload was cancelled');
    await expect(gate.wait(2)).rejects.toBeInstanceOf(PartGateClosed);
    expect(isGateStop(new PartGateClosed('x'))).toBe(true);
    expect(isGateStop(new PartWaitTimeout(1))).toBe(true);
    expect(isGateStop(new Error('S3 stalled'))).toBe(false);
    // No timer is left behind by a closed wait.
    expect(vi.getTimerCount()).toBe(0);
  });
});
