/**
 * A Store decorator that times every call into the metrics, without naming a single method: the
 * store and each of its repositories are Proxies whose functions are timed as `users.get`,
 * `sessions.rotate`, `store.transaction`, ... So a new repository, a new method or a changed
 * signature (the PostgreSQL store) needs no edit here. Calls run on the real objects, so private
 * state and `this` behave exactly as without the decorator.
 */
import type { Metrics } from './metrics.js';

type StoreTimer = Pick<Metrics, 'storeCall'>;

function timed(
  fn: (...args: unknown[]) => unknown,
  self: object,
  operation: string,
  metrics: StoreTimer,
): (...args: unknown[]) => unknown {
  return (...args: unknown[]): unknown => {
    const started = performance.now();
    const done = (failed: boolean): void =>
      metrics.storeCall(operation, (performance.now() - started) / 1000, failed);
    let result: unknown;
    try {
      result = fn.apply(self, args);
    } catch (error) {
      done(true);
      throw error;
    }
    if (result instanceof Promise)
      return result.then(
        (value: unknown) => {
          done(false);
          return value;
        },
        (error: unknown) => {
          done(true);
          throw error;
        },
      );
    done(false);
    return result;
  };
}

/** Wraps `target` so its functions are timed as `<prefix>.<name>`; objects one level down too. */
function proxy<T extends object>(target: T, prefix: string, metrics: StoreTimer, depth: number): T {
  // Keyed by name, remembered with what was wrapped: a member replaced since is wrapped afresh.
  const cache = new Map<string, { readonly original: unknown; readonly wrapped: unknown }>();
  return new Proxy(target, {
    get(object, key) {
      const value: unknown = Reflect.get(object, key, object);
      if (typeof key !== 'string') return value;
      const cached = cache.get(key);
      if (cached !== undefined && cached.original === value) return cached.wrapped;
      let wrapped: unknown;
      if (typeof value === 'function')
        wrapped = timed(value as (...args: unknown[]) => unknown, object, `${prefix}.${key}`, metrics);
      else if (depth > 0 && typeof value === 'object' && value !== null)
        wrapped = proxy(value, key, metrics, depth - 1);
      else return value;
      cache.set(key, { original: value, wrapped });
      return wrapped;
    },
  });
}

/** `store` with every call timed into `metrics` (`cove_store_operation_duration_seconds`). */
export function timedStore<S extends object>(store: S, metrics: StoreTimer): S {
  return proxy(store, 'store', metrics, 1);
}
