import type { Store } from '../store/store.js';
import type { LimitStore } from './limiter.js';

/** Limit states in Rotor's database: every instance on it shares them (a row lock per update). */
export function databaseLimitStore(store: Store): LimitStore {
  return { update: (key, change) => store.updateRateLimit(key, change) };
}
