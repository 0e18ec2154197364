/** How many refresh tokens' sessions are remembered at most (about 10 MB of strings at the cap). */
const DEFAULT_CAPACITY = 50_000;

/**
 * The session of each live refresh token this process handed out (a login's first, a rotation's
 * successor), by token hash: what lets a refresh on PostgreSQL admit the session's per-session
 * budget (`LIMITS.refreshSession`, a limit in this process's memory) before anything changes and
 * then rotate in one statement (`TokenStore.rotateLiveRefreshToken`, issue 19). A token issued by
 * another instance, or before a restart, is not here: its refresh takes the transaction that reads
 * the session first, and the successor is remembered from then on.
 *
 * Only a hint: the statement itself checks that the token belongs to the session named here, so a
 * wrong or stale entry costs a fallback, never a wrong answer. Bounded, oldest entries dropped
 * first (a Map keeps insertion order); an entry is forgotten once the statement has been tried
 * with it, since a token rotates once (a refused admission keeps it: nothing was tried).
 */
export class IssuedRefreshTokens {
  readonly #sessions = new Map<string, string>();
  readonly #capacity: number;

  constructor(capacity = DEFAULT_CAPACITY) {
    this.#capacity = capacity;
  }

  /** Remembers that the refresh token hashed `tokenHash` belongs to session `sessionId`. */
  remember(tokenHash: string, sessionId: string): void {
    if (this.#capacity <= 0) return;
    if (this.#sessions.size >= this.#capacity) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest !== undefined) this.#sessions.delete(oldest);
    }
    this.#sessions.set(tokenHash, sessionId);
  }

  /** The session remembered for `tokenHash`; undefined if none. */
  sessionOf(tokenHash: string): string | undefined {
    return this.#sessions.get(tokenHash);
  }

  /** Forgets `tokenHash` (it was rotated, or the statement could not rotate it). */
  forget(tokenHash: string): void {
    this.#sessions.delete(tokenHash);
  }

  get size(): number {
    return this.#sessions.size;
  }
}
