import { Migrator } from 'kysely';
import { KyselyStore } from './kysely-store.js';
import { migrationProvider } from './migrations.js';
import { openPostgres } from './postgres/open-postgres.js';
import { openSqlite } from './sqlite/open-sqlite.js';

export interface OpenStoreOptions {
  /** Apply pending migrations first (default true). */
  migrate?: boolean;
  /** PostgreSQL connections per instance (default 10). */
  poolSize?: number;
  /** Told about PostgreSQL connections that fail while idle. */
  onIdleError?: (error: Error) => void;
}

/**
 * Opens the store named by a `ROTOR_DATABASE_URL`: `sqlite:<path>` (embedded) or
 * `postgres://…`, applying migrations unless told not to.
 * @example const store = await openStore('sqlite:./rotor.db');
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<KyselyStore> {
  const { db, changes } = url.startsWith('sqlite:')
    ? openSqlite(url.slice('sqlite:'.length))
    : openPostgres(url, {
        poolSize: options.poolSize ?? 10,
        ...(options.onIdleError && { onIdleError: options.onIdleError }),
      });
  const store = new KyselyStore(db, { changes });
  if (options.migrate !== false) {
    try {
      await migrate(store);
    } catch (error) {
      await store.close();
      throw error;
    }
  }
  return store;
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
