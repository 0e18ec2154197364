import type { Selectable } from 'kysely';
import type { LimitState } from '../limits/window.js';
import type { ChangeWatch, SessionStateListener } from './changes.js';
import type {
  EventsTable,
  LoginTicketsTable,
  SessionsTable,
  SigningKeysTable,
  UsersTable,
  UserTokensTable,
} from './schema.js';

export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type TokenRow = Selectable<UserTokensTable>;
export type SigningKeyRow = Selectable<SigningKeysTable>;
export type EventRow = Selectable<EventsTable>;
export type LoginTicketRow = Selectable<LoginTicketsTable>;

/** A session with the user it belongs to, read together. */
export interface SessionWithUser {
  session: SessionRow;
  user: UserRow;
}

/**
 * A keyset page request: at most `limit` rows that sort after `after`, the key of the last row of
 * the previous page (no OFFSET: a page costs the same however deep, and rows written meanwhile
 * shift nothing).
 */
export interface KeysetPage<Key> {
  limit: number;
  after?: Key | undefined;
}

/** Up to `limit` rows, and whether more follow (the store reads `limit + 1` to know). */
export interface RowSlice<Row> {
  rows: Row[];
  more: boolean;
}

/** Where a session sits in the newest-first order of a user's sessions. */
export interface SessionKey {
  /** Milliseconds since the epoch. */
  createdAt: number;
  id: string;
}

/** Why a session ended; kept in `sessions.revoked_reason`. */
export type RevokeReason =
  | 'logout'
  | 'logout_all'
  | 'revoked'
  | 'reuse_detected'
  | 'admin'
  | 'password_changed'
  /** Ended by a newer login past `ROTOR_MAX_SESSIONS`. */
  | 'session_limit';

/**
 * What the session rules need from a database. Every method is one statement; the rules compose
 * them inside {@link Store.transaction} so that a request changes all or nothing (DESIGN.md, 6).
 */
export interface Store {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  /**
   * The database's own clock, in milliseconds since the epoch (PostgreSQL `clock_timestamp()`), for
   * decisions that compare times other instances wrote: one clock for every instance, so a lagging
   * one cannot stretch the grace window (issue 15, item 2). Undefined where the database has no
   * clock of its own apart from this process's (SQLite: one server process per file).
   */
  databaseNow(): Promise<number | undefined>;
  close(): Promise<void>;
  /**
   * Subscribes a cache to changes of session and user rows: this store's own writes, and other
   * processes' where the database tells (see `changes.ts`).
   */
  watchSessionState(listener: SessionStateListener): ChangeWatch;

  /** Inserts a user unless the email is taken; tells which. */
  insertUser(user: UserRow): Promise<boolean>;
  findUserByEmail(email: string): Promise<UserRow | undefined>;
  findUserById(id: string): Promise<UserRow | undefined>;
  /** Sets the password hash and bumps the user's session epoch (no session survives the change). */
  updatePasswordHash(userId: string, passwordHash: string): Promise<void>;
  /** Bumps the user's session epoch: a login verified before it may not create a session. */
  bumpSessionEpoch(userId: string): Promise<void>;
  /**
   * Reads a user and holds its row until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite's
   * write lock does the same), so a session created under it cannot race a change of it.
   */
  lockUser(id: string): Promise<UserRow | undefined>;

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

  insertToken(token: TokenRow): Promise<void>;
  findTokenByHash(hash: string): Promise<TokenRow | undefined>;
  /**
   * A token with its session and the session's user, in one read (the refresh path); undefined
   * unless all three exist. Holds the session's row until the transaction ends (PostgreSQL
   * `FOR UPDATE OF sessions`; on SQLite a read transaction cannot write over a newer commit), so a
   * revocation of the session and a rotation of its token are ordered: no refresh commits after a
   * revocation it did not see (issue 15, item 4).
   */
  findTokenWithSession(hash: string): Promise<(SessionWithUser & { token: TokenRow }) | undefined>;
  /**
   * The last token of the chain of successors that starts after `hash` (the token `successor_hash`
   * names, its own successor, …), followed in one recursive query, at most `maxLinks` links; with
   * how many links it is from `hash` (1: the successor itself). Undefined if `hash` has no successor
   * row. The tip is rotated itself only when the walk stopped at `maxLinks`.
   */
  findChainTip(
    hash: string,
    maxLinks: number,
  ): Promise<{ token: TokenRow; links: number } | undefined>;
  /**
   * Marks a live token rotated, only if no one else did first: the conditional update that exactly
   * one racer wins (DESIGN.md, "The refresh decision").
   */
  markTokenRotated(hash: string, now: number, successorHash: string): Promise<boolean>;

  /**
   * Deletes up to `limit` sessions that ended (revoked, idle-expired or past their maximum lifetime)
   * before `cutoff`, with their tokens; returns how many.
   */
  pruneEndedSessions(cutoff: number, limit: number): Promise<number>;
  /** Deletes up to `limit` rotated refresh tokens whose own expiry is before `cutoff`. */
  pruneRotatedTokens(cutoff: number, limit: number): Promise<number>;

  insertEvent(event: EventRow): Promise<void>;
  /**
   * A user's events, newest first: ordered by `id` descending (ids begin with their time,
   * `audit-log.ts`), a page at a time; `after` is the id of the last event of the previous page.
   */
  listUserEvents(userId: string, page: KeysetPage<string>): Promise<RowSlice<EventRow>>;
  /** Deletes up to `limit` events older than `cutoff`; returns how many. */
  pruneEvents(cutoff: number, limit: number): Promise<number>;

  /** Applies `change` to one key's state atomically (a row lock on PostgreSQL). */
  updateRateLimit(
    key: string,
    change: (state: LimitState | undefined) => LimitState,
  ): Promise<void>;
  /** Deletes states that expired before `now` (their window and block long over); how many. */
  pruneRateLimits(now: number): Promise<number>;

  listSigningKeys(): Promise<SigningKeyRow[]>;
  /** Inserts a key unless one with that kid exists. */
  insertSigningKey(key: SigningKeyRow): Promise<void>;
  /** Every key but `keepKid` leaves the JWKS at `at` at the latest. */
  retireSigningKeys(keepKid: string, at: number): Promise<void>;
  findSecret(name: string): Promise<string | undefined>;
  /** Keeps the first value ever written under `name` (instances racing at start agree). */
  insertSecretIfAbsent(name: string, value: string, now: number): Promise<void>;

  // login tickets (issue 16)
  /**
   * Rotor's row of a user of the app's own user table (engine/user-directory.ts): inserted when
   * missing, its email and name brought up to date; the password hash stays the directory's, and
   * the session epoch Rotor's. Throws (unique violation) when another user has the email.
   */
  mirrorUser(user: Pick<UserRow, 'id' | 'email' | 'name' | 'created_at'>): Promise<UserRow>;
  /**
   * Replaces a verified hash with a stronger one of the same password (bcrypt → argon2id), only
   * while `oldHash` is still stored; the session epoch stays (the password did not change).
   */
  upgradePasswordHash(userId: string, oldHash: string, newHash: string): Promise<boolean>;
  insertLoginTicket(ticket: LoginTicketRow): Promise<void>;
  /**
   * Deletes the ticket of `hash` if it has not expired at `now` and returns it: one conditional
   * DELETE … RETURNING, which exactly one of concurrent redeemers wins.
   */
  consumeLoginTicket(hash: string, now: number): Promise<LoginTicketRow | undefined>;
  /** Deletes tickets that expired before `now`; how many. */
  pruneLoginTickets(now: number): Promise<number>;
}
