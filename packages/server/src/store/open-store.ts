import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { sql } from 'kysely';
import { ConfigError, RotorError } from '../errors.js';
import { KyselyStore } from './kysely-store.js';
import { RotorNames, type TableNaming } from './naming.js';
import { openPostgres } from './postgres/open-postgres.js';
import { openSqlite } from './sqlite/open-sqlite.js';
import { applyMigrations } from './apply-migrations.js';
import { createStore, type CreateStoreOptions } from './create-store.js';
import { holdServerLock } from './sqlite/server-lock.js';

/** What every way of opening a store accepts: where Rotor's tables are, and whether to migrate. */
export interface StoreOptions extends TableNaming {
  /** Apply pending migrations first (default true). */
  migrate?: boolean;
}

export interface OpenStoreOptions extends StoreOptions {
  /** PostgreSQL connections per instance (default 10). */
  poolSize?: number;
  /** Told about PostgreSQL connections that fail while idle. */
  onIdleError?: (error: Error) => void;
  /**
   * SQLite: hold the file for this process, refusing to open one another server holds (default
   * false; a server takes it, the CLI's commands do not: `sqlite/server-lock.ts`).
   */
  serverLock?: boolean;
}

/**
 * Opens the store named by a `ROTOR_DATABASE_URL`: `sqlite:<path>` (embedded) or
 * `postgres://…`, applying migrations unless told not to.
 * @example const store = await openStore('sqlite:./rotor.db');
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<KyselyStore> {
  const sqlite = url.startsWith('sqlite:');
  const path = url.slice('sqlite:'.length);
  if (sqlite) assertSqliteFolder(path);
  const names = new RotorNames(options);
  const { db, changes } = sqlite
    ? openSqlite(path)
    : openPostgres(url, {
        poolSize: options.poolSize ?? 10,
        channel: names.channel,
        ...(options.onIdleError && { onIdleError: options.onIdleError }),
      });
  let lock: { release(): void } | undefined;
  try {
    // After opening: the file exists, so its real path is known (sqlite/server-lock.ts).
    if (sqlite && options.serverLock && isFilePath(path)) lock = holdServerLock(path);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const store = new KyselyStore(names.plain ? db : db.withPlugin(names.plugin), {
    names,
    changes,
    onClose: async () => {
      await db.destroy();
      lock?.release();
    },
  });
  try {
    // The pool connects lazily: without a first query here, a PostgreSQL that cannot be reached
    // would surface as a driver error from deep inside the migrator (or the key loading).
    if (!sqlite) await reach(store, url);
    if (options.migrate !== false) await applyMigrations(store);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/**
 * better-sqlite3 creates a missing database file but not its folder, and says only "Cannot open
 * database because the directory does not exist", naming neither the path nor the setting.
 */
function assertSqliteFolder(path: string): void {
  if (!isFilePath(path)) return;
  const folder = dirname(resolve(path));
  if (!existsSync(folder)) {
    throw new ConfigError(
      'ROTOR_DATABASE_URL',
      `the folder ${folder} of the SQLite database ${path} does not exist: create it, or point ROTOR_DATABASE_URL at a file in an existing folder`,
    );
  }
}

/** Whether an SQLite location is a plain file path (not `:memory:` nor a `file:` URI). */
function isFilePath(path: string): boolean {
  return path !== ':memory:' && !path.startsWith('file:');
}

/** One round trip, so an unreachable server is reported as such, naming the URL (no password). */
async function reach(store: KyselyStore, url: string): Promise<void> {
  try {
    await sql`select 1`.execute(store.db);
  } catch (error) {
    const reason = error instanceof Error && error.message ? error.message : String(error);
    throw new RotorError(
      'unavailable',
      `cannot reach PostgreSQL at ${redactDatabaseUrl(url)} (ROTOR_DATABASE_URL): ${reason}`,
      { cause: error },
    );
  }
}

/**
 * A database URL fit for a message or a log line: the password, in the authority or as a
 * `password` query parameter (node-postgres reads both), replaced by `***`.
 */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString();
  } catch {
    // Not parseable as a URL: keep the scheme only, rather than risk printing a secret.
    return `${url.split(':')[0]}://***`;
  }
}

/**
 * Applies every pending migration to Rotor's tables; returns the names applied, oldest first.
 * Takes an open store, or what {@link openStore} (a URL and options) or {@link createStore} (an
 * application's connection) takes, which it opens without migrating and closes again. With a
 * schema, creates the schema first if missing. On PostgreSQL, Kysely's migrator holds an advisory
 * lock in the migration transaction, so instances starting at once take turns. The bookkeeping
 * (`kysely_migration`, `kysely_migration_lock`) follows the schema and prefix like Rotor's tables,
 * so it never meets an application's own Kysely migrations.
 * @example await migrate(await createStore({ dialect: 'postgres', pool, tablePrefix: 'rotor_' }));
 * @example await migrate({ url: 'sqlite:./app.db', tablePrefix: 'rotor_' });
 */
export async function migrate(
  target: KyselyStore | CreateStoreOptions | ({ url: string } & OpenStoreOptions),
): Promise<string[]> {
  if (target instanceof KyselyStore) return applyMigrations(target);
  const store =
    'url' in target
      ? await openStore(target.url, { ...target, migrate: false })
      : await createStore({ ...target, migrate: false });
  try {
    return await applyMigrations(store);
  } finally {
    await store.close();
  }
}
