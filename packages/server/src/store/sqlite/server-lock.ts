import { realpathSync, statSync } from 'node:fs';
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
 * `locking_mode=EXCLUSIVE`: the database itself stays open to the CLI. Call it once the database
 * file exists (after opening it).
 */
export function holdServerLock(databasePath: string): { release(): void } {
  // One lock per file, however it is named: `./rotor.db`, its absolute path, a symlink to it. The
  // file exists by now (opened first), so a symlink that was dangling before resolves too.
  const real = realpathSync(databasePath);
  // A second hard link is a second name no path can lead back from: refuse rather than guess.
  const links = statSync(real).nlink;
  if (links > 1) {
    throw new ConfigError(
      'ROTOR_DATABASE_URL',
      `the SQLite database ${databasePath} has ${links} hard links, so another server could serve it under another name unseen: keep one name (make copies with \`sqlite3 ${databasePath} ".backup copy.db"\`, not links)`,
    );
  }
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
