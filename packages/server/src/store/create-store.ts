import type SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type pg from 'pg';
import { applyMigrations } from './apply-migrations.js';
import { noExternalChanges, type ExternalChanges } from './changes.js';
import { KyselyStore } from './kysely-store.js';
import { isPostgres } from './migrations.js';
import { RotorNames, type TableNaming } from './naming.js';
import { postgresChanges } from './postgres/postgres-changes.js';
import type { Database } from './schema.js';
import { onSqlite } from './sqlite/open-sqlite.js';

/**
 * A connection an application already has, for Rotor's tables to live beside its own (issue 16,
 * §4). The application keeps it: closing the store leaves it open.
 */
export type StoreConnection =
  /** A node-postgres pool; session-state changes are heard over one more connection like its own. */
  | { dialect: 'postgres'; pool: pg.Pool }
  /** A better-sqlite3 handle, configured by the application (Rotor expects WAL mode). */
  | { dialect: 'sqlite'; database: SqliteDatabase.Database }
  /**
   * A Kysely instance of either dialect. Without `listen` (PostgreSQL: a URL or client
   * configuration for the `LISTEN` connection) other processes' changes go unheard, and the
   * session-state cache never answers (every check reads the database).
   */
  | {
      dialect: 'postgres' | 'sqlite';
      // The application's own database type: Rotor sees only its own tables through it.
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      kysely: Kysely<any>;
      listen?: string | pg.ClientConfig;
    };

/** {@link createStore}'s argument: the connection, where Rotor's tables are, whether to migrate. */
export type CreateStoreOptions = StoreConnection &
  TableNaming & {
    /** Apply pending migrations first (default true). */
    migrate?: boolean;
    /** Told about failures of the `LISTEN` connection (PostgreSQL), instead of nothing. */
    onIdleError?: (error: Error) => void;
  };

/**
 * Opens Rotor's store on a connection the application owns: its PostgreSQL pool, its SQLite
 * handle, or its Kysely instance; with a schema (`schema`) or a prefix (`tablePrefix`) so Rotor's
 * `users` and `sessions` never meet the application's own. Applies pending migrations unless
 * `migrate: false`. `store.close()` stops Rotor's own listener only: the pool, handle or Kysely
 * instance stays open, for the application to close. Pass the store to `createRotor(config,
 * { store })`.
 * @example
 * const store = await createStore({ dialect: 'postgres', pool, tablePrefix: 'rotor_' });
 * const rotor = await createRotor(loadConfig(), { store });
 */
export async function createStore(options: CreateStoreOptions): Promise<KyselyStore> {
  const names = new RotorNames(options);
  const report = (error: Error) => options.onIdleError?.(error);
  let db: Kysely<Database>;
  let changes: ExternalChanges = noExternalChanges;
  if ('pool' in options) {
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: borrowed(options.pool) }) });
    changes = postgresChanges(options.pool.options, report, names.channel);
  } else if ('database' in options) {
    ({ db, changes } = onSqlite(options.database));
  } else {
    db = options.kysely as Kysely<Database>;
    if (isPostgres(db as Kysely<unknown>) !== (options.dialect === 'postgres')) {
      // A caller's mistake, told at once: the dialect decides the locks of the refresh protocol.
      throw new TypeError(`createStore: the Kysely instance does not speak ${options.dialect}`);
    }
    if (options.listen !== undefined && options.dialect === 'postgres') {
      changes = postgresChanges(options.listen, report, names.channel);
    }
  }
  const store = new KyselyStore(names.plain ? db : db.withPlugin(names.plugin), {
    names,
    changes,
    // The connection is the application's: nothing to end but Rotor's own listener (closed by
    // the store before this runs).
    onClose: async () => {},
  });
  try {
    await sql`select 1`.execute(store.db);
    if (options.migrate !== false) await applyMigrations(store);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/**
 * The application's pool as Kysely's dialect sees it, minus `end()`: Kysely ends the pool it was
 * given when destroyed, and a borrowed pool must outlive Rotor whatever calls `destroy()`.
 */
function borrowed(pool: pg.Pool): pg.Pool {
  return new Proxy(pool, {
    get(target, property, receiver) {
      if (property === 'end') return async () => {};
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}
