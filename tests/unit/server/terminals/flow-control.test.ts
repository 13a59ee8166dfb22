import { describe, expect, it } from 'vitest';
import { FlowControl } from '../../../../server/terminals/flow-control.js';

function harness(high = 100, low = 20) {
  const log: string[] = [];
  let buffered = 0;
  const flow = new FlowControl({
    highWatermarkBytes: high,
    lowWatermarkBytes: low,
    bufferedAmount: () => buffered,
    pause: () => log.push('pause'),
    resume: () => log.push('resume'),
  });
  return { flow, log, setBuffered: (n: number) => (buffered = n) };
}

describe('FlowControl', () => {
  it('pauses once unacknowledged bytes reach the high watermark, not before', () => {
    const { flow, log } = harness();
    flow.sent(60);
    expect(log).toEqual([]);
    flow.sent(39);
    expect(log).toEqual([]);
    flow.sent(1);
    expect(log).toEqual(['pause']);
    flow.sent(50);
    expect(log).toEqual(['pause']);
    expect(flow.isPaused).toBe(true);
    expect(flow.unacknowledged).toBe(150);
  });

  it('resumes only below the low watermark (hysteresis)', () => {
    const { flow, log } = harness();
    flow.sent(150);
    flow.acknowledged(100); // 50 left: above low
    expect(log).toEqual(['pause']);
    flow.acknowledged(131); // 19 left
    expect(log).toEqual(['pause', 'resume']);
    expect(flow.isPaused).toBe(false);
  });

  it('treats acks as cumulative: duplicates are harmless, going backwards is refused, overshoot is clamped', () => {
    const { flow } = harness();
    flow.sent(50);
    expect(flow.acknowledged(30)).toBe(true);
    expect(flow.acknowledged(30)).toBe(true);
    expect(flow.unacknowledged).toBe(20);
    expect(flow.acknowledged(10)).toBe(false);
    expect(flow.unacknowledged).toBe(20);
    expect(flow.acknowledged(1_000_000)).toBe(true);
    expect(flow.unacknowledged).toBe(0);
    // An ack beyond what was sent does not buy credit for later output.
    flow.sent(100);
    expect(flow.isPaused).toBe(true);
  });

  it('also pauses on socket backlog (a client that acks without reading) and resumes when it drains', () => {
    const { flow, log, setBuffered } = harness();
    flow.sent(10);
    flow.acknowledged(10);
    setBuffered(500);
    flow.sent(5);
    expect(log).toEqual(['pause']);
    flow.acknowledged(15);
    expect(log).toEqual(['pause']);
    setBuffered(0);
    flow.drained();
    expect(log).toEqual(['pause', 'resume']);
  });

  it('release leaves the source running', () => {
    const { flow, log } = harness();
    flow.sent(200);
    flow.release();
    expect(log).toEqual(['pause', 'resume']);
    flow.release();
    expect(log).toEqual(['pause', 'resume']);
  });

  it('rejects watermarks in the wrong order', () => {
    expect(() => harness(10, 10)).toThrow(RangeError);
  });
});
