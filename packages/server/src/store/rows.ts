import type { RowSlice, SessionRow, SessionWithUser, TokenRow, UserRow } from './store.js';

/**
 * Rows as the engine sees them: PostgreSQL returns `bigint` as text, so every time is converted to
 * a number here, once, for every query that reads the table.
 */

/** The first `limit` of `rows` (read with one extra), and whether the extra was there. */
export function slice<Row>(rows: Row[], limit: number): RowSlice<Row> {
  return { rows: rows.slice(0, limit), more: rows.length > limit };
}

export function nullableNumber(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}

export function userRow(row: UserRow): UserRow {
  return {
    ...row,
    created_at: Number(row.created_at),
    session_epoch: Number(row.session_epoch),
    email_verified_at: nullableNumber(row.email_verified_at),
  };
}

export function sessionRow(row: SessionRow): SessionRow {
  return {
    ...row,
    created_at: Number(row.created_at),
    last_used_at: Number(row.last_used_at),
    idle_expires_at: Number(row.idle_expires_at),
    max_expires_at: nullableNumber(row.max_expires_at),
    revoked_at: nullableNumber(row.revoked_at),
  };
}

export function tokenRow(row: TokenRow): TokenRow {
  return {
    ...row,
    created_at: Number(row.created_at),
    expires_at: Number(row.expires_at),
    rotated_at: nullableNumber(row.rotated_at),
  };
}

/** A row of the sessions-with-users join (`sessions.ts`), split into its two rows. */
export function sessionWithUserRow(
  row: SessionRow & {
    user_email: string;
    user_name: string | null;
    user_password_hash: string | null;
    user_created_at: number;
    user_session_epoch: number;
    user_email_verified_at: number | null;
  },
): SessionWithUser {
  const {
    user_email,
    user_name,
    user_password_hash,
    user_created_at,
    user_session_epoch,
    user_email_verified_at,
    ...session
  } = row;
  return {
    session: sessionRow(session),
    user: userRow({
      id: session.user_id,
      email: user_email,
      name: user_name,
      password_hash: user_password_hash,
      created_at: user_created_at,
      session_epoch: user_session_epoch,
      email_verified_at: user_email_verified_at,
    }),
  };
}
