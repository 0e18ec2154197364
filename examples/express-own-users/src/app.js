// An Express app with its own users table, and Rotor mounted at /auth-service: Rotor signs the
// app's users in (their bcrypt hashes become argon2id at their next login), keeps its sessions in
// rotor_* tables of the app's database, and guards the app's routes with requireSession.
import express from 'express';
import { createStore, loadConfig } from '@rotor/server';
import { requireSession, rotorRouter } from '@rotor/server/express';
import { openDatabase } from './database.js';

/** @typedef {import('@rotor/server').DirectoryUser} DirectoryUser */

export const PREFIX = '/auth-service';

/**
 * @param {{ databaseUrl: string, config?: import('@rotor/server').RotorConfig }} options
 *   `config` defaults to `loadConfig()` (ROTOR_* variables; set ROTOR_ISSUER to
 *   `https://<your host>/auth-service`)
 */
export async function createApp({ databaseUrl, config = loadConfig() }) {
  const db = openDatabase(databaseUrl);
  // The app's integer ids are Rotor's string ids: String() out, Number() back in.
  /** @type {(column: string, value: unknown) => Promise<DirectoryUser | undefined>} */
  const findUser = async (column, value) => {
    const sql = `select id, email, password_hash from users where ${column} = ?`;
    const [row] = await db.query(sql, [value]);
    return row && { id: String(row.id), email: row.email, passwordHash: row.password_hash };
  };
  const store = await createStore({ ...db.connection, tablePrefix: 'rotor_' });
  const rotor = await rotorRouter({
    config,
    prefix: PREFIX,
    store,
    users: {
      findByLogin: (email) => findUser('email', email.trim().toLowerCase()),
      findById: (id) => findUser('id', Number(id)),
      updatePasswordHash: async (id, hash) => {
        await db.query('update users set password_hash = ? where id = ?', [hash, Number(id)]);
      },
    },
    // In every access token, re-read at each refresh: a role change reaches the next rotation.
    claims: async ({ user }) => {
      const [row] = await db.query('select role from users where id = ?', [Number(user.id)]);
      return { role: row?.role ?? 'member' };
    },
  });

  const app = express();
  app.use(PREFIX, rotor);
  app.get('/api/notes', requireSession(rotor), async (req, res) => {
    const notes = await db.query('select id, text from notes where user_id = ? order by id', [
      Number(req.user?.id),
    ]);
    res.json({ role: req.claims?.role, notes });
  });

  return {
    app,
    db,
    async close() {
      await rotor.close();
      await store.close();
      await db.close();
    },
  };
}
