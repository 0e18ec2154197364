import { eventIdPrefix, eventIdTime } from '../audit/audit-log.js';
import type { StoreContext } from './context.js';
import { slice } from './rows.js';
import type { EventRow, KeysetPage, RowSlice } from './store.js';

/** The audit log: the `events` table. */
export interface EventStore {
  insertEvent(event: EventRow): Promise<void>;
  /**
   * A user's events, newest first: ordered by `id` descending (ids begin with their time,
   * `audit-log.ts`), a page at a time; `after` is the id of the last event of the previous page.
   */
  listUserEvents(userId: string, page: KeysetPage<string>): Promise<RowSlice<EventRow>>;
  /** Deletes up to `limit` events older than `cutoff`; returns how many. */
  pruneEvents(cutoff: number, limit: number): Promise<number>;
}

/** The {@link EventStore} over Kysely. */
export function eventStore({ db }: StoreContext): EventStore {
  return {
    async insertEvent(event) {
      await db.insertInto('events').values(event).execute();
    },

    async listUserEvents(userId, page) {
      let query = db.selectFrom('events').selectAll().where('user_id', '=', userId);
      const after = page.after;
      if (after !== undefined) {
        // Ids begin with their time (audit-log.ts), so id order is (at, id) order; spelled with
        // `at` first, the (user_id, at) index finds the page instead of sorting all the user's
        // events.
        const at = eventIdTime(after);
        query = query.where((eb) =>
          eb.or([eb('at', '<', at), eb.and([eb('at', '=', at), eb('id', '<', after)])]),
        );
      }
      const rows = await query
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(page.limit + 1)
        .execute();
      return slice(
        rows.map((row) => ({ ...row, at: Number(row.at) })),
        page.limit,
      );
    },

    async pruneEvents(cutoff, limit) {
      // Ids begin with the time (audit-log.ts): a range of the primary key, no index on `at`.
      const old = db
        .selectFrom('events')
        .select('id')
        .where('id', '<', eventIdPrefix(cutoff))
        .limit(limit);
      const result = await db.deleteFrom('events').where('id', 'in', old).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
