// The backend as its own process, beside a Rotor started with ROTOR_ADMIN_TOKEN:
//   ROTOR_URL=http://127.0.0.1:3000 ROTOR_ADMIN_TOKEN=… PORT=4000 npm start -w @rotor/example-ticket-backend
// The "email" with the sign-in code is printed on stdout.
import { createBackend } from './backend.js';

const adminToken = process.env.ROTOR_ADMIN_TOKEN;
if (!adminToken) {
  console.error('ROTOR_ADMIN_TOKEN is not set: it must be the token Rotor was started with.');
  process.exit(1);
}
const port = Number(process.env.PORT ?? 4000);
const server = createBackend({
  rotorUrl: process.env.ROTOR_URL ?? 'http://127.0.0.1:3000',
  adminToken,
  sendEmail: (to, text) => console.log(`email to ${to}: ${text}`),
});
server.listen(port, '127.0.0.1', () => console.log(`backend on http://127.0.0.1:${port}`));
process.once('SIGTERM', () => server.close());
