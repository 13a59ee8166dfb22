import { describe, expect, it } from 'vitest';
import { StartQueue } from '../../../../server/environments/start-queue.js';

/** A task the test finishes by hand. */
function gate(): { promise: Promise<void>; open: () => void; fail: (e: Error) => void } {
  let open!: () => void;
  let fail!: (e: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('StartQueue', () => {
  it('runs at most `limit` at once, the rest in arrival order, each told how many are ahead', async () => {
    const queue = new StartQueue(2);
    const gates = Array.from({ length: 5 }, () => gate());
    const started: number[] = [];
    const heard: number[][] = gates.map(() => []);
    const done = gates.map((g, i) =>
      queue.run(
        async () => {
          started.push(i);
          await g.promise;
          return i;
        },
        (ahead) => heard[i]?.push(ahead),
      ),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect(queue.size).toEqual({ running: 2, waiting: 3, background: 0 });
    expect(heard).toEqual([[], [], [0], [1], [2]]);

    gates[1]?.open();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    expect(heard.slice(3)).toEqual([
      [1, 0],
      [2, 1],
    ]);

    gates[0]?.open();
    gates[2]?.open();
    await tick();
    expect(started).toEqual([0, 1, 2, 3, 4]);
    // Numbers only go down, and a start that never waited hears nothing.
    expect(heard).toEqual([[], [], [0], [1, 0], [2, 1, 0]]);
    gates[3]?.open();
    gates[4]?.open();
    expect(await Promise.all(done)).toEqual([0, 1, 2, 3, 4]);
    expect(queue.size).toEqual({ running: 0, waiting: 0, background: 0 });
  });

  it('frees the slot of a start that failed, and the failure reaches its caller only', async () => {
    const queue = new StartQueue(1);
    const first = gate();
    const failing = queue.run(() => first.promise);
    const second = queue.run(async () => 'second');
    first.fail(new Error('engine said no'));
    await expect(failing).rejects.toThrow('engine said no');
    await expect(second).resolves.toBe('second');
  });

  it('a listener that throws does not stop the queue', async () => {
    const queue = new StartQueue(1);
    const first = gate();
    const running = queue.run(() => first.promise);
    const waiting = queue.run(
      async () => 'ran',
      () => {
        throw new Error('page gone');
      },
    );
    first.open();
    await running;
    await expect(waiting).resolves.toBe('ran');
  });

  it('runs background starts only while no user waits, and always leaves a slot for the next user', async () => {
    const queue = new StartQueue(3);
    const order: string[] = [];
    const gates = new Map<string, ReturnType<typeof gate>>();
    const task = (name: string) => async () => {
      order.push(name);
      const g = gate();
      gates.set(name, g);
      await g.promise;
    };
    const background = ['b1', 'b2', 'b3', 'b4'].map((name) => queue.runInBackground(task(name)));
    await tick();
    // Two of three slots: the third stays free for a user.
    expect(order).toEqual(['b1', 'b2']);
    const user = queue.run(task('u1'));
    await tick();
    expect(order).toEqual(['b1', 'b2', 'u1']);
    // Full now; a second user waits and goes before every background start.
    const heard: number[] = [];
    const second = queue.run(task('u2'), (ahead) => heard.push(ahead));
    gates.get('b1')?.open();
    await tick();
    expect(order).toEqual(['b1', 'b2', 'u1', 'u2']);
    expect(heard).toEqual([0]);
    gates.get('u1')?.open();
    gates.get('u2')?.open();
    await tick();
    expect(order).toEqual(['b1', 'b2', 'u1', 'u2', 'b3']);
    gates.get('b2')?.open();
    await tick();
    expect(order).toEqual(['b1', 'b2', 'u1', 'u2', 'b3', 'b4']);
    gates.get('b3')?.open();
    gates.get('b4')?.open();
    await Promise.all([...background, user, second]);
    expect(queue.size).toEqual({ running: 0, waiting: 0, background: 0 });
  });

  it('a limit of one still lets background starts run, one at a time', async () => {
    const queue = new StartQueue(1);
    const ran: string[] = [];
    await Promise.all(['a', 'b'].map((n) => queue.runInBackground(async () => void ran.push(n))));
    expect(ran).toEqual(['a', 'b']);
  });

  it('refuses a limit below one', () => {
    expect(() => new StartQueue(0)).toThrow(RangeError);
  });
});
