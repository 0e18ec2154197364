import type { StoreContext } from './context.js';
import type { LoginTicketRow } from './store.js';

/** Single-use login tickets (engine/login-tickets.ts): the `login_tickets` table, hashes only. */
export interface LoginTicketStore {
  insertLoginTicket(ticket: LoginTicketRow): Promise<void>;
  /**
   * Deletes the ticket of `hash` if it has not expired at `now` and returns it: one conditional
   * DELETE … RETURNING, which exactly one of concurrent redeemers wins.
   */
  consumeLoginTicket(hash: string, now: number): Promise<LoginTicketRow | undefined>;
  /** Deletes tickets that expired before `now`; how many. */
  pruneLoginTickets(now: number): Promise<number>;
}

/** The {@link LoginTicketStore} over Kysely. */
export function loginTicketStore({ db }: StoreContext): LoginTicketStore {
  return {
    async insertLoginTicket(ticket) {
      await db.insertInto('login_tickets').values(ticket).execute();
    },

    async consumeLoginTicket(hash, now) {
      const row = await db
        .deleteFrom('login_tickets')
        .where('ticket_hash', '=', hash)
        .where('expires_at', '>', now)
        .returningAll()
        .executeTakeFirst();
      // PostgreSQL returns bigint columns as strings.
      return (
        row && {
          ...row,
          session_epoch: Number(row.session_epoch),
          created_at: Number(row.created_at),
          expires_at: Number(row.expires_at),
        }
      );
    },

    async pruneLoginTickets(now) {
      const result = await db
        .deleteFrom('login_tickets')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
