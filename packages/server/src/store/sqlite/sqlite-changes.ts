import type SqliteDatabase from 'better-sqlite3';
import type { ExternalChanges } from '../changes.js';

/**
 * SQLite's `PRAGMA data_version` changes whenever another connection (another process, such as
 * `rotor sessions revoke`) commits to the file, and never for this connection's own commits, which
 * the store reports itself. Reading it costs one step of a prepared statement, so it runs before
 * every cache read: a change made elsewhere is seen by the very next request.
 */
export function sqliteChanges(database: SqliteDatabase.Database): ExternalChanges {
  const dataVersion = database.prepare('PRAGMA data_version').pluck();
  const read = () => dataVersion.get() as number;
  return {
    watch(listener) {
      let seen = read();
      return {
        current() {
          const version = read();
          if (version !== seen) {
            seen = version;
            listener.all();
            // Perhaps `rotor keys rotate --retire-now`: the key ring re-reads within a second.
            listener.keys();
          }
          return true;
        },
        close: async () => {},
      };
    },
    close: async () => {},
  };
}
