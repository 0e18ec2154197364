import type { Kysely } from 'kysely';
import type { StoreContext } from './context.js';
import { sessionRow, sessionWithUserRow, slice } from './rows.js';
import type { Database } from './schema.js';
import type {
  KeysetPage,
  RevokeReason,
  RowSlice,
  SessionKey,
  SessionRow,
  SessionWithUser,
} from './store.js';

/** Devices: the `sessions` table. */
export interface SessionStore {
  insertSession(session: SessionRow): Promise<void>;
  findSession(id: string): Promise<SessionRow | undefined>;
  /** The session and its user in one read (the access-token check on every request). */
  findSessionWithUser(id: string): Promise<SessionWithUser | undefined>;
  /** How many sessions, of all users, are neither revoked nor expired at `now`. */
  countActiveSessions(now: number): Promise<number>;
  /**
   * The user's sessions that are neither revoked nor expired at `now`, newest first: ordered by
   * (`created_at`, `id`) descending, a page at a time.
   */
  listActiveSessions(
    userId: string,
    now: number,
    page: KeysetPage<SessionKey>,
  ): Promise<RowSlice<SessionRow>>;
  /** Ids of the user's live sessions, least recently used first (the session cap's victims). */
  listLiveSessionIdsByUse(userId: string, now: number): Promise<string[]>;
  touchSession(
    id: string,
    patch: Pick<SessionRow, 'last_used_at' | 'idle_expires_at'> &
      Partial<Pick<SessionRow, 'ip' | 'user_agent' | 'delivery'>>,
  ): Promise<void>;
  /** Revokes one session if it is not revoked yet; tells whether it did. */
  revokeSession(id: string, now: number, reason: RevokeReason): Promise<boolean>;
  /** Revokes every live session of a user, but `exceptSessionId` if given; returns how many. */
  revokeUserSessions(
    userId: string,
    now: number,
    reason: RevokeReason,
    exceptSessionId?: string,
  ): Promise<number>;
  /**
   * Deletes up to `limit` sessions that ended (revoked, idle-expired or past their maximum lifetime)
   * before `cutoff`, with their tokens; returns how many.
   */
  pruneEndedSessions(cutoff: number, limit: number): Promise<number>;
}

/**
 * Sessions live at `now`: not revoked, within their idle expiry and their maximum lifetime. The
 * one SQL spelling of "not revoked and `sessionEndsAt(session) > now`" (sessions/session-state.ts);
 * every query that counts or lists live sessions starts from it.
 */
export function liveSessions(db: Kysely<Database>, now: number) {
  return db
    .selectFrom('sessions')
    .where('revoked_at', 'is', null)
    .where('idle_expires_at', '>', now)
    .where((eb) => eb.or([eb('max_expires_at', 'is', null), eb('max_expires_at', '>', now)]));
}

/** Sessions joined to their users: the session's columns, and the user's as `user_*`. */
export function sessionsWithUsers(db: Kysely<Database>) {
  return db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .selectAll('sessions')
    .select([
      'users.email as user_email',
      'users.name as user_name',
      'users.password_hash as user_password_hash',
      'users.created_at as user_created_at',
      'users.session_epoch as user_session_epoch',
      'users.email_verified_at as user_email_verified_at',
    ]);
}

/** The {@link SessionStore} over Kysely. */
export function sessionStore({ db, changed }: StoreContext): SessionStore {
  return {
    async insertSession(row) {
      await db.insertInto('sessions').values(row).execute();
    },

    async findSession(id) {
      const row = await db
        .selectFrom('sessions')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && sessionRow(row);
    },

    async findSessionWithUser(id) {
      const row = await sessionsWithUsers(db).where('sessions.id', '=', id).executeTakeFirst();
      return row && sessionWithUserRow(row);
    },

    async countActiveSessions(now) {
      const row = await liveSessions(db, now)
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async listActiveSessions(userId, now, page) {
      let query = liveSessions(db, now).selectAll().where('user_id', '=', userId);
      const after = page.after;
      if (after) {
        // (created_at, id) < (after): spelled out, as SQLite before 3.15 has no row values.
        query = query.where((eb) =>
          eb.or([
            eb('created_at', '<', after.createdAt),
            eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)]),
          ]),
        );
      }
      const rows = await query
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(page.limit + 1)
        .execute();
      return slice(rows.map(sessionRow), page.limit);
    },

    async listLiveSessionIdsByUse(userId, now) {
      const rows = await liveSessions(db, now)
        .select('id')
        .where('user_id', '=', userId)
        .orderBy('last_used_at', 'asc')
        .orderBy('id', 'asc')
        .execute();
      return rows.map((row) => row.id);
    },

    async touchSession(id, patch) {
      await db.updateTable('sessions').set(patch).where('id', '=', id).execute();
      changed((l) => l.session(id));
    },

    async revokeSession(id, now, reason) {
      const result = await db
        .updateTable('sessions')
        .set({ revoked_at: now, revoked_reason: reason })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      changed((l) => l.session(id));
      return Number(result.numUpdatedRows) === 1;
    },

    async revokeUserSessions(userId, now, reason, exceptSessionId) {
      let query = db
        .updateTable('sessions')
        .set({ revoked_at: now, revoked_reason: reason })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null);
      if (exceptSessionId !== undefined) query = query.where('id', '!=', exceptSessionId);
      const result = await query.executeTakeFirst();
      changed((l) => l.user(userId));
      return Number(result.numUpdatedRows);
    },

    async pruneEndedSessions(cutoff, limit) {
      const ended = db
        .selectFrom('sessions')
        .select('id')
        .where((eb) =>
          eb.or([
            eb('revoked_at', '<', cutoff),
            eb('idle_expires_at', '<', cutoff),
            eb('max_expires_at', '<', cutoff),
          ]),
        )
        .limit(limit);
      // Tokens first, explicitly: no reliance on ON DELETE CASCADE being enabled on the connection.
      await db.deleteFrom('user_tokens').where('session_id', 'in', ended).execute();
      const result = await db.deleteFrom('sessions').where('id', 'in', ended).executeTakeFirst();
      changed((l) => l.all());
      return Number(result.numDeletedRows);
    },
  };
}
