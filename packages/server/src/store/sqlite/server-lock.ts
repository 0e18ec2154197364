import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { ConfigError } from '../../errors.js';

/**
 * Holds an SQLite database file for one server process, until {@link release}d or the process
 * ends (the operating system drops the lock of a killed process, so a crash leaves nothing to
 * clean up). Rotor serves an SQLite file from one process: a second server on the same file would
 * make the loser of every refresh race wait on the writer's lock and answer `503` instead of the
 * grace row (issue 15, item 7). Commands of the CLI beside the running server do not take it.
 *
 * The lock is SQLite's own exclusive lock on a small companion file, `<database>-lock`, held in
 * `locking_mode=EXCLUSIVE`: the database itself stays open to the CLI.
 */
export function holdServerLock(databasePath: string): { release(): void } {
  // One lock per file, however it is named: `./rotor.db`, its absolute path and a symlink to it.
  const real = existsSync(databasePath)
    ? realpathSync(databasePath)
    : join(realpathSync(dirname(databasePath)), basename(databasePath));
  const lockPath = `${real}-lock`;
  // No waiting: a second server should be told at once, not after a timeout.
  const lock = new SqliteDatabase(lockPath, { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    // Nothing in it is worth a journal: no `-lock-journal` file beside the database.
    lock.pragma('journal_mode = MEMORY');
    // The exclusive lock is taken by the first write and kept until the connection closes.
    lock.exec(
      `create table if not exists server (pid integer not null); delete from server; insert into server values (${process.pid})`,
    );
  } catch (error) {
    lock.close();
    if ((error as { code?: unknown }).code !== 'SQLITE_BUSY') throw error;
    throw new ConfigError(
      'ROTOR_DATABASE_URL',
      `another Rotor server is already serving the SQLite database ${databasePath} (it holds ${lockPath}): run one server per SQLite file, stop the other one, or use PostgreSQL (ROTOR_DATABASE_URL=postgres://…) to run several instances`,
    );
  }
  return { release: () => lock.close() };
}
