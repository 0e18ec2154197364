import type { Store } from '../store/store.js';
import type { LimitStore } from './limiter.js';

/** Limit states in Rotor's database: every instance on it shares them. */
export function databaseLimitStore(store: Store): LimitStore {
  return {
    read: (key) => store.findRateLimit(key),
    update: (key, change) => store.updateRateLimit(key, change),
    remove: (key) => store.deleteRateLimit(key),
  };
}
