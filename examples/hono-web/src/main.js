// Serves the app on 127.0.0.1 with Rotor inside it:
//   PORT=3000 npm start -w @rotor/example-hono-web
// Any ROTOR_* variable applies (ROTOR_DATABASE_URL=postgres://… for PostgreSQL).
import { serve } from '@hono/node-server';
import { loadConfig } from '@rotor/server';
import { createApp } from './app.js';

const port = Number(process.env.PORT ?? 3000);
const config = loadConfig({
  ROTOR_DATABASE_URL: 'sqlite:./hono-web.db',
  ROTOR_PORT: String(port), // the allowed origins default to this port's
  ROTOR_ISSUER: `http://127.0.0.1:${port}/rotor`,
  ...process.env,
});
const { app, rotor } = await createApp({ config });
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () =>
  console.log(`Hono + Rotor on http://127.0.0.1:${port}`),
);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => server.close(() => rotor.close()));
}
