// ROTOR_DATABASE_URL=sqlite:./rotor.db PORT=3000 npm start -w @rotor/example-fastify-plugin
// (or ROTOR_DATABASE_URL=postgres://…). A browser page served from this origin may use cookies:
// set ROTOR_ALLOWED_ORIGINS to the origins your pages are served from.
import { createApp, PREFIX } from './app.js';

const port = Number(process.env.PORT ?? 3000);
process.env.ROTOR_ISSUER ??= `http://127.0.0.1:${port}${PREFIX}`;
process.env.ROTOR_ALLOWED_ORIGINS ??= `http://127.0.0.1:${port},http://localhost:${port}`;
const app = await createApp();
await app.listen({ host: '127.0.0.1', port });
console.log(`app on http://127.0.0.1:${port}, Rotor at ${PREFIX}`);
process.once('SIGINT', () => void app.close());
