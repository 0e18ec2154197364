import type { ChangeWatch, SessionStateListener } from '../store/changes.js';
import type { SessionWithUser, Store } from '../store/store.js';

/** Sessions are small; ten thousand cost a few MiB and cover the active devices of a busy hour. */
const DEFAULT_CAPACITY = 10_000;

/**
 * Session and user rows for the access-token check on every request, kept only while the store
 * vouches for them: an entry goes when the store reports a write to its session or user (this
 * process's at once; other processes' through SQLite's `data_version`, or PostgreSQL's NOTIFY for
 * revocations, deletions and user changes), and no entry answers while the store cannot vouch.
 * Revocation therefore stays immediate. The verdict on expiry is not cached: the caller judges the
 * row by its clock on every hit, and re-reads a row that looks expired, since another instance's
 * refresh may have extended it without a notification.
 */
export class SessionStateCache implements SessionStateListener {
  readonly #entries = new Map<string, SessionWithUser>();
  readonly #capacity: number;
  readonly #watch: ChangeWatch;
  /** Bumped by every change, so a read that raced a change is not remembered. */
  #generation = 0;

  readonly #onKeys: () => void;

  /**
   * @param onKeys told when the store saw a change that may be of the signing keys (the store has
   *   one watch per cache, and this cache's is the one every request consults).
   */
  constructor(store: Store, { capacity = DEFAULT_CAPACITY, onKeys = () => {} } = {}) {
    this.#capacity = capacity;
    this.#onKeys = onKeys;
    this.#watch = store.watchSessionState(this);
  }

  /**
   * Takes in the changes made elsewhere so far (SQLite: reads `data_version`) and tells whether the
   * store vouches for the cache now. A request calls it first, so that a key withdrawn elsewhere is
   * known before its token is checked, and hands the answer to {@link get}.
   */
  sync(): boolean {
    return this.#watch.current();
  }

  /** The session and its user: from the cache when current, else read with `read`. */
  async get(
    id: string,
    read: (id: string) => Promise<SessionWithUser | undefined>,
    current = this.sync(),
  ): Promise<SessionWithUser | undefined> {
    if (current) {
      const hit = this.#entries.get(id);
      if (hit) return hit;
    }
    const generation = this.#generation;
    const state = await read(id);
    // Remembered only if the store still vouches now, not just when the request began: a listener
    // lost meanwhile (and a revocation it then missed) must not leave an entry behind that a
    // request holding an old `current` would answer from (found by the model, docs/protocol.md).
    if (state && current && generation === this.#generation && this.#watch.current()) {
      this.#remember(id, state);
    }
    return state;
  }

  /**
   * The cached session and user, without reading the store: undefined when not cached or when the
   * store does not vouch (`current`, from {@link sync}); then call {@link get}. The per-request
   * fast path, with no promise.
   */
  peek(id: string, current: boolean): SessionWithUser | undefined {
    return current ? this.#entries.get(id) : undefined;
  }

  #remember(id: string, state: SessionWithUser): void {
    // Oldest first out: Map keeps insertion order.
    if (this.#entries.size >= this.#capacity) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(id, state);
  }

  get size(): number {
    return this.#entries.size;
  }

  session(id: string): void {
    this.#generation += 1;
    this.#entries.delete(id);
  }

  user(id: string): void {
    this.#generation += 1;
    for (const [key, state] of this.#entries) {
      if (state.user.id === id) this.#entries.delete(key);
    }
  }

  all(): void {
    this.#generation += 1;
    this.#entries.clear();
  }

  keys(): void {
    this.#onKeys();
  }

  close(): Promise<void> {
    this.all();
    return this.#watch.close();
  }
}
