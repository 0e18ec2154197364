import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { IssuedRefreshTokens } from './issued-refresh-tokens.js';

/** The session lifetimes, in seconds (API.md, "Configuration"). */
export interface SessionPolicy {
  /** Idle expiry: a refresh token not used for this long ends its session. */
  refreshTtl: number;
  /** Maximum lifetime regardless of activity; 0 disables it. */
  sessionMaxAge: number;
  /** How long a rotated refresh token still yields the same successor. */
  refreshGrace: number;
  /** Live sessions per user; a new one past it ends the least recently used (issue 13, item 12). */
  maxSessions: number;
}

/** What the session rules run on: injected, never global, so tests build their own. */
export interface SessionContext {
  store: Store;
  clock: Clock;
  policy: SessionPolicy;
  /** Derives refresh-token successors (see `deriveSuccessor`). */
  hmacKey: Uint8Array;
  /**
   * The time, in milliseconds since the epoch, of decisions that compare times other instances
   * wrote (the refresh decision: rotation times, the grace window, expiry): the database's clock
   * where it has one (`Store.databaseNow`), so every instance measures with one clock (issue 15,
   * item 2); else `clock`. Read inside the decision's transaction, after its lock.
   */
  decisionTime(tx: Store): Promise<number>;
  /**
   * The decision's time for a decision made in one statement (`Store.rotateLiveRefreshToken`):
   * undefined for the database's own clock, read by the statement after its lock; an injected
   * clock's time otherwise (tests and simulations run on one time).
   */
  statementTime?(): number | undefined;
  /**
   * The sessions of the refresh tokens this process issued (issued-refresh-tokens.ts); without it
   * every refresh decides in a transaction.
   */
  issued?: IssuedRefreshTokens;
}

/** Where a request comes from; kept on the session so the user can tell their devices apart. */
export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
  /**
   * The JWK SHA-256 thumbprint of the key whose DPoP proof (RFC 9449) came with the request, once
   * the proof was checked; undefined without one. A sign-in binds the new session to it; a refresh
   * of a bound session must come with the same one.
   */
  dpopJkt?: string | undefined;
}
