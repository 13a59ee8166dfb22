/**
 * Which staged parts of an upload may be read yet. An upload that starts writing into the home
 * while the page is still sending (s3-file-transfer.ts) reads part N only once the page said it
 * is stored and S3 showed its size and ETag; `complete` opens every part at once.
 *
 * A reader waiting longer than `idleMs` for a part gets `PartWaitTimeout`: the page went away or
 * is too slow, and the early write gives up rather than hold a helper in the container.
 */

/** No part came within the idle time, or the gate was closed. */
export class PartWaitTimeout extends Error {
  constructor(readonly partNumber: number) {
    super(`part ${partNumber} was not reported in time`);
    this.name = 'PartWaitTimeout';
  }
}

/** The early write was stopped (cancel, `complete` with other ETags, shutdown). */
export class PartGateClosed extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'PartGateClosed';
  }
}

/** The reader stopped because of the gate, not because S3 or the home failed. */
export const isGateStop = (error: unknown): boolean =>
  error instanceof PartWaitTimeout || error instanceof PartGateClosed;

interface Waiter {
  readonly partNumber: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class PartGate {
  private readonly ready = new Set<number>();
  private readonly waiters = new Set<Waiter>();
  private all = false;
  private closedWith: Error | undefined;

  constructor(private readonly idleMs: number) {}

  /** Part `partNumber` may be read. */
  open(partNumber: number): void {
    this.ready.add(partNumber);
    this.wake();
  }

  /** Every part may be read (`complete` checked them all). */
  openAll(): void {
    this.all = true;
    this.wake();
  }

  /** Fails every present and future wait with `error`. */
  close(error: PartGateClosed): void {
    this.closedWith ??= error;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(this.closedWith);
    }
    this.waiters.clear();
  }

  isOpen(partNumber: number): boolean {
    return this.all || this.ready.has(partNumber);
  }

  /** Resolves once part `partNumber` may be read. */
  wait(partNumber: number): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.isOpen(partNumber)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        partNumber,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new PartWaitTimeout(partNumber));
        }, this.idleMs),
      };
      waiter.timer.unref();
      this.waiters.add(waiter);
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) {
      if (!this.isOpen(waiter.partNumber)) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve();
    }
  }
}
