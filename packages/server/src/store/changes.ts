/**
 * What a cache of session state hears from the store: this process's own writes at once, and other
 * processes' writes as far as the database can tell (SQLite's `data_version`, PostgreSQL's
 * `LISTEN/NOTIFY`). Forgetting more than needed is always safe; missing a change never is.
 */
export interface SessionStateListener {
  /** One session's row changed or went away. */
  session(id: string): void;
  /** A user's row changed or went away. */
  user(id: string): void;
  /** Anything may have changed. */
  all(): void;
  /** The signing keys may have changed (also implied by `all`, which callers report with it). */
  keys(): void;
}

/** One listener's subscription. */
export interface ChangeWatch {
  /**
   * Whether every change committed so far has been reported to the listener; called before each
   * cache read. False means the store cannot vouch now (PostgreSQL listener reconnecting).
   */
  current(): boolean;
  close(): Promise<void>;
}

/** Where other processes' changes come from, per dialect. */
export interface ExternalChanges {
  watch(listener: SessionStateListener): ChangeWatch;
  close(): Promise<void>;
}

/** A database that reports nothing: every cache read is refused. */
export const noExternalChanges: ExternalChanges = {
  watch: () => ({ current: () => false, close: async () => {} }),
  close: async () => {},
};
