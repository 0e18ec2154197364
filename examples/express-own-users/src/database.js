// The app's own database, as an app has one before Rotor arrives: SQLite or PostgreSQL, chosen by
// DATABASE_URL. `query` takes `?` placeholders on both, so the app's SQL is written once.
import Database from 'better-sqlite3';
import pg from 'pg';

/**
 * @typedef {object} AppDatabase
 * @property {{ dialect: 'sqlite', database: import('better-sqlite3').Database }
 *   | { dialect: 'postgres', pool: pg.Pool }} connection what Rotor's `createStore` takes
 * @property {(text: string, params?: unknown[]) => Promise<any[]>} query rows of a statement
 * @property {() => Promise<void>} close
 */

/**
 * @param {string} url `sqlite:<path>` or `postgres://…`
 * @returns {AppDatabase}
 */
export function openDatabase(url) {
  if (url.startsWith('sqlite:')) {
    const database = new Database(url.slice('sqlite:'.length));
    database.pragma('journal_mode = WAL');
    return {
      connection: { dialect: 'sqlite', database },
      async query(text, params = []) {
        const statement = database.prepare(text);
        if (statement.reader) return statement.all(...params);
        statement.run(...params);
        return [];
      },
      async close() {
        database.close();
      },
    };
  }
  const pool = new pg.Pool({ connectionString: url });
  return {
    connection: { dialect: 'postgres', pool },
    async query(text, params = []) {
      let n = 0;
      return (
        await pool.query(
          text.replace(/\?/g, () => `$${++n}`),
          params,
        )
      ).rows;
    },
    close: () => pool.end(),
  };
}

/**
 * The app's tables, from before Rotor: its users (bcrypt hashes from the system it was migrated
 * from), its own `sessions` (a shopping cart; nothing to do with Rotor's) and its notes.
 * @param {AppDatabase} db
 */
export async function createAppTables(db) {
  await db.query(`create table if not exists users (
    id integer primary key,
    email text not null unique,
    password_hash text,
    role text not null default 'member'
  )`);
  await db.query(`create table if not exists sessions (
    id text primary key,
    user_id integer not null references users (id),
    cart text not null
  )`);
  await db.query(`create table if not exists notes (
    id integer primary key,
    user_id integer not null references users (id),
    text text not null
  )`);
}
