import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Migrator, sql } from 'kysely';
import { ConfigError, RotorError } from '../errors.js';
import { KyselyStore } from './kysely-store.js';
import { migrationProvider } from './migrations.js';
import { openPostgres } from './postgres/open-postgres.js';
import { openSqlite } from './sqlite/open-sqlite.js';
import { holdServerLock } from './sqlite/server-lock.js';

export interface OpenStoreOptions {
  /** Apply pending migrations first (default true). */
  migrate?: boolean;
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
  const { db, changes } = sqlite
    ? openSqlite(path)
    : openPostgres(url, {
        poolSize: options.poolSize ?? 10,
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
  const store = new KyselyStore(db, {
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
    if (options.migrate !== false) await migrate(store);
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
 * Applies every pending migration; returns the names applied. On PostgreSQL, Kysely's migrator
 * holds an advisory lock in the migration transaction, so instances starting at once take turns.
 */
export async function migrate(store: KyselyStore): Promise<string[]> {
  const migrator = new Migrator({ db: store.db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
