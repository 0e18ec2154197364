import { Migrator, sql, type Kysely } from 'kysely';
import type { KyselyStore } from './kysely-store.js';
import { isPostgres, migrationProvider } from './migrations.js';

/**
 * Applies every pending migration over an open store's handle (its naming plugin applied), first
 * creating its PostgreSQL schema if it has one; returns the names applied. The public entry is
 * `migrate` (open-store.ts).
 */
export async function applyMigrations(store: KyselyStore): Promise<string[]> {
  const { names, db } = store;
  if (names.schema !== undefined && isPostgres(db as Kysely<unknown>)) {
    await sql`create schema if not exists ${sql.id(names.schema)}`.execute(db);
  }
  const migrator = new Migrator({ db, provider: migrationProvider(names) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
