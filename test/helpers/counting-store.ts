import type { ObjectStore } from '../../src/cache/store.js';

/** Calls per ObjectStore method (get, head, put, list, delete…): one per store request, as an S3 bill counts them. */
export type RequestCounts = Map<string, number>;

/** The same store, counting every method call in `counts` (for tests and the bench that assert requests by type). */
export function countingStore<S extends ObjectStore>(inner: S): { store: S; counts: RequestCounts } {
  const counts: RequestCounts = new Map();
  const store = new Proxy(inner, {
    get(target, name) {
      const value: unknown = Reflect.get(target, name, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts.set(String(name), (counts.get(String(name)) ?? 0) + 1);
        return (value as (...args: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, counts };
}
