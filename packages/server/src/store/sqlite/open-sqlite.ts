import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDatabase as SqliteDialectDatabase } from 'kysely';
import type { ExternalChanges } from '../changes.js';
import type { Database } from '../schema.js';
import { sqliteChanges } from './sqlite-changes.js';

/**
 * Opens an SQLite database file for Rotor: WAL so readers never wait for the writer,
 * `synchronous=NORMAL` (in WAL mode a crash of the process loses nothing committed; a power loss
 * may lose the last transactions, never corrupt the file), foreign keys on, and a busy timeout so
 * a second process (`rotor sessions revoke` beside a running server) waits instead of failing.
 * The driver is synchronous, so the wait blocks the event loop: keep it short; a lock held longer
 * answers `503 unavailable`.
 */
export function openSqlite(path: string): { db: Kysely<Database>; changes: ExternalChanges } {
  const database = new SqliteDatabase(path);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 1000');
  return onSqlite(database);
}

/**
 * Rotor's Kysely over an open better-sqlite3 handle, as it is configured (an application's own
 * handle keeps its pragmas: Rotor expects WAL and a busy timeout, as {@link openSqlite} sets).
 * Destroying the Kysely closes the handle; a borrowed handle's store must not destroy it.
 */
export function onSqlite(database: SqliteDatabase.Database): {
  db: Kysely<Database>;
  changes: ExternalChanges;
} {
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: withStatementCache(database) }),
  });
  return { db, changes: sqliteChanges(database) };
}

/** Distinct SQL texts Rotor runs are a few dozen; the bound only guards against a runaway caller. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query anew; preparing costs more than running an indexed lookup (the
 * profile of `GET /auth/me` showed it as the largest cost). A statement prepared once per SQL text
 * is safe to reuse here: better-sqlite3 runs it synchronously to the end, and Rotor never streams.
 */
function withStatementCache(database: SqliteDatabase.Database): SqliteDialectDatabase {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = statements.get(sql);
      if (!statement) {
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.clear();
        statement = database.prepare(sql);
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}
