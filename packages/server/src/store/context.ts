import type { Kysely } from 'kysely';
import type { SessionStateListener } from './changes.js';
import type { RotorNames } from './naming.js';
import type { Database } from './schema.js';

/** A change to report to the session-state listeners (see `changes.ts`). */
export type Change = (listener: SessionStateListener) => void;

/**
 * What every concept's store (`users.ts`, `sessions.ts`, …) runs over: one Kysely handle (the pool,
 * or the transaction in progress), which dialect it speaks, and where to report writes that a
 * session-state cache must hear of.
 */
export interface StoreContext {
  readonly db: Kysely<Database>;
  /** PostgreSQL (row locks, its own clock) rather than SQLite. */
  readonly postgres: boolean;
  /** Where Rotor's tables and functions are (schema, prefix), for names raw SQL cannot infer. */
  readonly names: RotorNames;
  /** Tells every listener now, and again after the transaction if there is one. */
  changed(change: Change): void;
}
