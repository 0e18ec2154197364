import { PostgresAdapter, type Kysely, type Selectable } from 'kysely';
import type { Database, RateLimitsTable } from '../store/schema.js';
import type { LimitStore } from './limiter.js';
import type { LimitState } from './window.js';

/**
 * Limit states in Rotor's database (the `rate_limits` table), shared by every instance on it: an
 * update holds the key's row (PostgreSQL `FOR UPDATE`; SQLite's write lock) from its read to its
 * write. The default limit store when no `ROTOR_REDIS_URL` is set. States expire by `expiresAt`
 * and are deleted by {@link SqlLimitStore.prune} (the retention job), not by a TTL.
 */
export class SqlLimitStore implements LimitStore {
  readonly #db: Kysely<Database>;

  /** `db`: Rotor's Kysely handle (its naming plugin applied), or a transaction of it. */
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async update(key: string, change: (state: LimitState | undefined) => LimitState): Promise<void> {
    const run = async (db: Kysely<Database>) => {
      // Insert first: on SQLite that takes the write lock, on PostgreSQL the row then exists to
      // be locked; either way no other update of this key runs between the read and the write,
      // whichever instance it comes from.
      await db
        .insertInto('rate_limits')
        .values({ key, events: '[]', expires_at: 0 })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      let query = db.selectFrom('rate_limits').selectAll().where('key', '=', key);
      if (db.getExecutor().adapter instanceof PostgresAdapter) query = query.forUpdate();
      const row = await query.executeTakeFirst();
      const next = change(row && Number(row.expires_at) !== 0 ? limitState(row) : undefined);
      await db
        .updateTable('rate_limits')
        .set({ events: JSON.stringify(next.events), expires_at: next.expiresAt })
        .where('key', '=', key)
        .execute();
    };
    if (this.#db.isTransaction) await run(this.#db);
    else await this.#db.transaction().execute(run);
  }

  /** Deletes states that expired before `now` (their window and block long over); how many. */
  async prune(now: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('rate_limits')
      .where('expires_at', '<', now)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function limitState(row: Selectable<RateLimitsTable>): LimitState {
  return {
    events: (JSON.parse(row.events) as unknown[]).map(Number),
    expiresAt: Number(row.expires_at),
  };
}
