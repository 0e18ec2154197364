// Row 6 of `npm run bench`: Rotor inside an application, as docs/embedding.md tells a user to
// embed it: `rotorPlugin` under `/rotor`, and two routes of the application returning the same
// small JSON, one behind `app.requireSession` (the session check on every request) and one
// without it (the limit). Same process, same Fastify options: the difference is the check alone.
import Fastify from 'fastify';
import { loadConfig } from '@rotor/server';
import { rotorPlugin } from '@rotor/server/fastify';

const body = JSON.stringify({ notes: [] });
// Request logs off, as on row 2's servers: a logger at `warn` writes nothing on these routes.
const app = Fastify({ logger: false });
await app.register(rotorPlugin, { config: loadConfig(), prefix: '/rotor' });
app.get('/app/open', async (_request, reply) => reply.type('application/json').send(body));
app.get('/app/notes', { preHandler: app.requireSession }, async (_request, reply) =>
  reply.type('application/json').send(body),
);
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
