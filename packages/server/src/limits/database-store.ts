import type { Store } from '../store/store.js';
import type { LimitStore } from './limiter.js';

/**
 * Limit states in Rotor's database, reached through the store (and so inside its transaction when
 * there is one): every instance on the database shares them. The SQL is `SqlLimitStore`'s (sql-store.ts).
 */
export function databaseLimitStore(store: Store): LimitStore {
  return { update: (key, change) => store.updateRateLimit(key, change) };
}
