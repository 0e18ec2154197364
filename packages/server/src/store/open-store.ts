import { Migrator } from 'kysely';
import { ConfigError } from '../errors.js';
import { KyselyStore } from './kysely-store.js';
import { migrationProvider } from './migrations.js';
import { openSqlite } from './sqlite/open-sqlite.js';

/**
 * Opens the store named by a `ROTOR_DATABASE_URL` (`sqlite:<path>`), applying migrations unless
 * told not to.
 * @example const store = await openStore('sqlite:./rotor.db');
 */
export async function openStore(
  url: string,
  options: { migrate?: boolean } = {},
): Promise<KyselyStore> {
  if (!url.startsWith('sqlite:')) {
    throw new ConfigError('ROTOR_DATABASE_URL', 'only sqlite:<path> is supported by this version');
  }
  const store = new KyselyStore(openSqlite(url.slice('sqlite:'.length)));
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

/** Applies every pending migration; returns the names applied. */
export async function migrate(store: KyselyStore): Promise<string[]> {
  const migrator = new Migrator({ db: store.db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
