import type { Selectable } from 'kysely';
import type { LimitState } from '../limits/window.js';
import type { ChangeWatch, SessionStateListener } from './changes.js';
import type { DpopProofStore } from './dpop-proofs.js';
import type { EmailTokenStore } from './email-tokens.js';
import type { EventStore } from './events.js';
import type { KeyStore } from './keys.js';
import type { LoginTicketStore } from './login-tickets.js';
import type { SessionStore } from './sessions.js';
import type { TokenStore } from './tokens.js';
import type { UserStore } from './users.js';
import type {
  EmailTokensTable,
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
export type EmailTokenRow = Selectable<EmailTokensTable>;

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
  /** Ended by a password reset by a link mailed to the account (issue 17). */
  | 'password_reset'
  /** Ended by undoing an email change from the old address (issue 17): a hijacked account. */
  | 'email_change_undone'
  /** Ended by a newer login past `ROTOR_MAX_SESSIONS`. */
  | 'session_limit';

/**
 * What the session rules need from a database: the concepts' stores (`users.ts`, `sessions.ts`,
 * `tokens.ts`, `events.ts`, `keys.ts`) and the rate-limit rows, behind one handle with its
 * transactions. Every method is one statement; the rules compose them inside
 * {@link Store.transaction} so that a request changes all or nothing (DESIGN.md, 6).
 */
export interface Store
  extends
    UserStore,
    SessionStore,
    TokenStore,
    EventStore,
    KeyStore,
    LoginTicketStore,
    EmailTokenStore,
    DpopProofStore {
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

  /**
   * Applies `change` to one key's state atomically (a row lock on PostgreSQL): the database's
   * limit store (`limits/sql-store.ts`), through which `databaseLimitStore(store)` reaches it.
   */
  updateRateLimit(
    key: string,
    change: (state: LimitState | undefined) => LimitState,
  ): Promise<void>;
  /** Deletes states that expired before `now` (their window and block long over); how many. */
  pruneRateLimits(now: number): Promise<number>;
}
