/**
 * Which transaction, if any, the running code is inside of. A store refuses its own methods
 * there: on SQLite they would wait for the very transaction that waits for them, on PostgreSQL
 * they would run outside it (and could exhaust the pool); the callback must use its `tx`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export class TransactionHandle {
  private ended = false;

  get open(): boolean {
    return !this.ended;
  }

  end(): void {
    this.ended = true;
  }

  /** Rejects work through a handle whose transaction has settled (a leaked `tx`). */
  check(): void {
    if (this.ended)
      throw new Error('This transaction has already ended: use its tx only inside the transaction callback.');
  }
}

export class TransactionScope {
  private readonly current = new AsyncLocalStorage<TransactionHandle>();

  run<T>(handle: TransactionHandle, fn: () => Promise<T>): Promise<T> {
    return this.current.run(handle, fn);
  }

  /** Throws when called from inside a transaction still open on this store. */
  refuseInside(): void {
    if (this.current.getStore()?.open)
      throw new Error(
        "A store method was called on the store itself inside store.transaction(): use the callback's tx instead.",
      );
  }
}
