/**
 * Fair admission for environment starts: at most `limit` run at once, the rest wait first come,
 * first served, and each waiting start hears how many are ahead of it whenever that changes (the
 * page shows "3 ahead of you" instead of a silent spinner). Nothing here times out: a start that
 * waits is still going to run.
 *
 * Why a bound at all: a start is mostly the engine's CPU (create, mounts, the container's first
 * processes). Thirty at once on two cores all finish late together; run a few at a time and the
 * first finish early and the last no later.
 */
interface Waiting {
  readonly admit: () => void;
  readonly onAhead: (ahead: number) => void;
  lastAhead: number;
}

/**
 * `user`: someone waits at a page. `background`: a pre-start nobody watches; it runs only when no
 * user waits and leaves one slot free for the next user who comes.
 */
export type StartPriority = 'user' | 'background';

export class StartQueue {
  private running = 0;
  private runningBackground = 0;
  private readonly waiting: Waiting[] = [];
  private readonly background: Array<() => void> = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('StartQueue limit must be ≥ 1');
  }

  /** Starts that are running now and waiting now (for metrics and tests). */
  get size(): { running: number; waiting: number; background: number } {
    return { running: this.running, waiting: this.waiting.length, background: this.background.length };
  }

  /**
   * Runs `task` behind every user's start, with at most `limit - 1` background starts at once (at
   * least one), so a class being pre-started never makes a user at a page wait for a whole slot.
   */
  async runInBackground<T>(task: () => Promise<T>): Promise<T> {
    // Counted when admitted (here, or by admitNext for one that waited), as for a user's start.
    if (this.backgroundMayRun()) this.takeBackgroundSlot();
    else await new Promise<void>((admit) => this.background.push(admit));
    try {
      return await task();
    } finally {
      this.running--;
      this.runningBackground--;
      this.admitNext();
    }
  }

  private takeBackgroundSlot(): void {
    this.running++;
    this.runningBackground++;
  }

  private backgroundMayRun(): boolean {
    return (
      this.waiting.length === 0 &&
      this.running < this.limit &&
      this.runningBackground < Math.max(1, this.limit - 1)
    );
  }

  /**
   * Runs `task` when a slot is free. `onAhead` hears the number of starts queued in front of this
   * one (0: next), first when it has to wait and again each time the number drops; never when it
   * runs at once.
   */
  async run<T>(task: () => Promise<T>, onAhead: (ahead: number) => void = () => {}): Promise<T> {
    if (this.running < this.limit && this.waiting.length === 0) this.running++;
    else
      await new Promise<void>((admit) => {
        const entry: Waiting = { admit, onAhead, lastAhead: this.waiting.length };
        this.waiting.push(entry);
        this.tell(entry, entry.lastAhead, true);
      });
    try {
      return await task();
    } finally {
      this.running--;
      this.admitNext();
    }
  }

  private admitNext(): void {
    while (this.running < this.limit && this.waiting.length > 0) {
      this.running++;
      this.waiting.shift()?.admit();
    }
    this.waiting.forEach((entry, index) => this.tell(entry, index, false));
    while (this.background.length > 0 && this.backgroundMayRun()) {
      this.takeBackgroundSlot();
      this.background.shift()?.();
    }
  }

  private tell(entry: Waiting, ahead: number, first: boolean): void {
    if (!first && entry.lastAhead === ahead) return;
    entry.lastAhead = ahead;
    try {
      entry.onAhead(ahead);
    } catch {
      // A listener's failure must not stop the queue.
    }
  }
}
