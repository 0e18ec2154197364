import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from '../schema.js';

/**
 * Opens an SQLite database file for Rotor: WAL so readers never wait for the writer,
 * `synchronous=NORMAL` (in WAL mode a crash of the process loses nothing committed; a power loss
 * may lose the last transactions, never corrupt the file), foreign keys on, and a busy timeout so
 * a second process (`rotor sessions revoke` beside a running server) waits instead of failing.
 * The driver is synchronous, so the wait blocks the event loop: keep it short; a lock held longer
 * answers `503 unavailable`.
 */
export function openSqlite(path: string): Kysely<Database> {
  const database = new SqliteDatabase(path);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 1000');
  return new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
}
