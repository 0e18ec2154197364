import { sql, type Kysely, type Transaction } from 'kysely';
import { SqlLimitStore } from '../limits/sql-store.js';
import type { LimitState } from '../limits/window.js';
import {
  noExternalChanges,
  type ChangeWatch,
  type ExternalChanges,
  type SessionStateListener,
} from './changes.js';
import type { Change, StoreContext } from './context.js';
import { dpopProofStore, type DpopProofStore } from './dpop-proofs.js';
import { emailTokenStore, type EmailTokenStore } from './email-tokens.js';
import { eventStore, type EventStore } from './events.js';
import { keyStore, type KeyStore } from './keys.js';
import { loginTicketStore, type LoginTicketStore } from './login-tickets.js';
import { isPostgres } from './migrations.js';
import { RotorNames } from './naming.js';
import type { Database } from './schema.js';
import { sessionStore, type SessionStore } from './sessions.js';
import type { Store } from './store.js';
import { tokenStore, type TokenStore } from './tokens.js';
import { userStore, type UserStore } from './users.js';

export interface KyselyStoreOptions {
  /** Runs on {@link KyselyStore.close}; defaults to destroying `db`. */
  onClose?: () => Promise<void>;
  /** Other processes' writes, per dialect; without it no cache may answer. */
  changes?: ExternalChanges;
  /** The schema and prefix of Rotor's tables, already applied to `db` by `names.plugin`. */
  names?: RotorNames;
}

/** The concepts' methods, which the constructor assigns to each instance from their modules. */
type Concepts = UserStore &
  SessionStore &
  TokenStore &
  EventStore &
  KeyStore &
  LoginTicketStore &
  EmailTokenStore &
  DpopProofStore;
const Concepts = Object as unknown as new () => Concepts;

/**
 * The {@link Store} over Kysely: the composition of the concepts' stores (`users.ts`,
 * `sessions.ts`, `tokens.ts`, `events.ts`, `keys.ts`) and the database's limit store over one
 * handle, with what belongs to the handle itself: transactions, the health check, the database's
 * clock, closing and the change listeners. Portable SQL that SQLite and PostgreSQL both run.
 */
export class KyselyStore extends Concepts implements Store {
  readonly #db: Kysely<Database>;
  readonly #onClose: () => Promise<void>;
  readonly #changes: ExternalChanges;
  readonly #listeners: Set<SessionStateListener>;
  /** In a transaction: the changes to report again once it has ended. */
  readonly #pending: Change[] | undefined;
  readonly #limits: SqlLimitStore;
  readonly #names: RotorNames;

  constructor(
    db: Kysely<Database>,
    options: KyselyStoreOptions = {},
    /** Internal: a transaction's store shares its parent's listeners. */
    shared?: { listeners: Set<SessionStateListener>; pending: Change[] },
  ) {
    super();
    this.#db = db;
    this.#onClose = options.onClose ?? (() => db.destroy());
    this.#changes = options.changes ?? noExternalChanges;
    this.#listeners = shared?.listeners ?? new Set();
    this.#pending = shared?.pending;
    this.#names = options.names ?? new RotorNames();
    this.#limits = new SqlLimitStore(db);
    const context: StoreContext = {
      db,
      postgres: isPostgres(db as Kysely<unknown>),
      names: this.#names,
      changed: (change) => this.#changed(change),
    };
    Object.assign(
      this,
      userStore(context),
      sessionStore(context),
      tokenStore(context),
      eventStore(context),
      keyStore(context),
      loginTicketStore(context),
      emailTokenStore(context),
      dpopProofStore(context),
    );
  }

  /** The underlying Kysely instance, for migrations and maintenance commands. */
  get db(): Kysely<Database> {
    return this.#db;
  }

  /** Where Rotor's tables are (schema, prefix): what migrations and the CLI need to know. */
  get names(): RotorNames {
    return this.#names;
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#db.isTransaction) return fn(this);
    const pending: Change[] = [];
    const shared = { listeners: this.#listeners, pending };
    try {
      return await this.#db
        .transaction()
        .execute((trx: Transaction<Database>) =>
          fn(new KyselyStore(trx, { changes: this.#changes, names: this.#names }, shared)),
        );
    } finally {
      // Reported at the write and again once the transaction has ended: a cache that re-read the
      // old row from another connection in between must forget it too (PostgreSQL).
      for (const change of pending) this.#listeners.forEach(change);
    }
  }

  watchSessionState(listener: SessionStateListener): ChangeWatch {
    this.#listeners.add(listener);
    const external = this.#changes.watch(listener);
    return {
      current: () => external.current(),
      close: async () => {
        this.#listeners.delete(listener);
        await external.close();
      },
    };
  }

  /** Tells every listener now, and again after the transaction if there is one. */
  #changed(change: Change): void {
    this.#listeners.forEach(change);
    this.#pending?.push(change);
  }

  /**
   * A write that changes nothing: ready means able to write, not only to read (a locked SQLite file
   * or a read-only PostgreSQL standby reads fine but cannot take a login).
   */
  async ping(): Promise<void> {
    await this.#db
      .updateTable('secrets')
      .set({ name: 'ping' })
      .where('name', '=', 'ping')
      .execute();
  }

  async databaseNow(): Promise<number | undefined> {
    if (!isPostgres(this.#db as Kysely<unknown>)) return undefined;
    // clock_timestamp(), not now(): the latter is the transaction's start, which a lock wait
    // would leave behind.
    const { rows } = await sql<{
      now: string;
    }>`select floor(extract(epoch from clock_timestamp()) * 1000)::bigint as now`.execute(this.#db);
    return Number(rows[0]!.now);
  }

  async close(): Promise<void> {
    await this.#changes.close();
    await this.#onClose();
  }

  updateRateLimit(key: string, change: (state: LimitState | undefined) => LimitState) {
    return this.#limits.update(key, change);
  }

  pruneRateLimits(now: number): Promise<number> {
    return this.#limits.prune(now);
  }
}
