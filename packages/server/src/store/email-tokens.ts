import type { StoreContext } from './context.js';
import type { EmailTokenPurpose } from './schema.js';
import type { EmailTokenRow } from './store.js';

/**
 * The single-use tokens of the account mails (engine/account-mail-tokens.ts): the `email_tokens`
 * table, SHA-256 hashes only.
 */
export interface EmailTokenStore {
  insertEmailToken(token: EmailTokenRow): Promise<void>;
  /** The unexpired token of `hash` for `purpose`, without consuming it (to find whose it is). */
  findEmailToken(
    hash: string,
    purpose: EmailTokenPurpose,
    now: number,
  ): Promise<EmailTokenRow | undefined>;
  /**
   * Deletes the token of `hash` for `purpose` if it has not expired at `now` and returns it: one
   * conditional DELETE … RETURNING, which exactly one of concurrent confirmations wins.
   */
  consumeEmailToken(
    hash: string,
    purpose: EmailTokenPurpose,
    now: number,
  ): Promise<EmailTokenRow | undefined>;
  /**
   * Deletes the user's tokens of `purposes` (a newer one voids the older; a password change voids
   * the resets); with `createdAfter`, only those issued after that time. How many.
   */
  deleteEmailTokens(
    userId: string,
    purposes: readonly EmailTokenPurpose[],
    options?: { createdAfter?: number },
  ): Promise<number>;
  /** Deletes tokens that expired before `now`; how many. */
  pruneEmailTokens(now: number): Promise<number>;
}

/** PostgreSQL returns bigint columns as strings. */
function emailTokenRow(row: EmailTokenRow): EmailTokenRow {
  return { ...row, created_at: Number(row.created_at), expires_at: Number(row.expires_at) };
}

/** The {@link EmailTokenStore} over Kysely. */
export function emailTokenStore({ db }: StoreContext): EmailTokenStore {
  return {
    async insertEmailToken(token) {
      await db.insertInto('email_tokens').values(token).execute();
    },

    async findEmailToken(hash, purpose, now) {
      const row = await db
        .selectFrom('email_tokens')
        .selectAll()
        .where('token_hash', '=', hash)
        .where('purpose', '=', purpose)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return row && emailTokenRow(row);
    },

    async consumeEmailToken(hash, purpose, now) {
      const row = await db
        .deleteFrom('email_tokens')
        .where('token_hash', '=', hash)
        .where('purpose', '=', purpose)
        .where('expires_at', '>', now)
        .returningAll()
        .executeTakeFirst();
      return row && emailTokenRow(row);
    },

    async deleteEmailTokens(userId, purposes, { createdAfter } = {}) {
      if (purposes.length === 0) return 0;
      let query = db
        .deleteFrom('email_tokens')
        .where('user_id', '=', userId)
        .where('purpose', 'in', purposes);
      if (createdAfter !== undefined) query = query.where('created_at', '>', createdAfter);
      const result = await query.executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async pruneEmailTokens(now) {
      const result = await db
        .deleteFrom('email_tokens')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
