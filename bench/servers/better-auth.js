// The peer of row 3: better-auth on SQLite as its docs set it up (better-sqlite3 `database`, email
// and password sign-in, `toNodeHandler` on node:http), its tables created by its own migrations.
// Its defaults otherwise: 7-day sessions refreshed once a day, no cookie cache.
import { createServer } from 'node:http';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';
import Database from 'better-sqlite3';

const port = Number(process.env.PORT);
const auth = betterAuth({
  database: new Database(process.env.BETTER_AUTH_DB),
  baseURL: `http://127.0.0.1:${port}`,
  secret: 'bench-secret-bench-secret-bench-secret',
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();
const server = createServer(toNodeHandler(auth)).listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
