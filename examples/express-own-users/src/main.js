// DATABASE_URL=sqlite:./app.db PORT=3000 npm start -w @rotor/example-express-own-users
// (or DATABASE_URL=postgres://…). A first start creates the app's tables and one user from "the
// old system": ada@example.com, password "correct horse battery", stored as a bcrypt hash.
import { hash } from '@node-rs/bcrypt';
import { createAppTables } from './database.js';
import { createApp, PREFIX } from './app.js';

const port = Number(process.env.PORT ?? 3000);
process.env.ROTOR_ISSUER ??= `http://127.0.0.1:${port}${PREFIX}`;
const { app, db, close } = await createApp({
  databaseUrl: process.env.DATABASE_URL ?? 'sqlite:./app.db',
});
await createAppTables(db);
if ((await db.query('select id from users')).length === 0) {
  const passwordHash = await hash('correct horse battery', { cost: 10 });
  await db.query("insert into users (id, email, password_hash, role) values (1, ?, ?, 'admin')", [
    'ada@example.com',
    passwordHash,
  ]);
  await db.query("insert into notes (id, user_id, text) values (1, 1, 'Rotor signs me in now')");
}
const server = app.listen(port, '127.0.0.1', () =>
  console.log(`app on http://127.0.0.1:${port}, Rotor at ${PREFIX}`),
);
process.once('SIGINT', () => server.close(() => void close()));
