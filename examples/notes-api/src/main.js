// Runs the notes API beside a Rotor server:
//   ROTOR_ISSUER=http://127.0.0.1:3000 PORT=4000 npm start -w @rotor/example-notes-api
// Strict mode (revocation at once) also needs an OAuth client with a secret registered in Rotor:
//   ROTOR_INTROSPECTION_CLIENT=notes-api ROTOR_INTROSPECTION_SECRET=… npm start -w …
import { createVerifier } from '@rotor/verify';
import { createNotesApi } from './notes-api.js';

const issuer = process.env.ROTOR_ISSUER ?? 'http://127.0.0.1:3000';
const strict = process.env.ROTOR_INTROSPECTION_CLIENT
  ? {
      introspectionUrl: `${issuer}/oauth/introspect`,
      clientId: process.env.ROTOR_INTROSPECTION_CLIENT,
      clientSecret: process.env.ROTOR_INTROSPECTION_SECRET ?? '',
    }
  : undefined;
const verifier = createVerifier({
  issuer,
  audience: process.env.ROTOR_AUDIENCE ?? 'rotor',
  jwksUri: `${issuer}/.well-known/jwks.json`,
  ...(strict && { strict }),
});
const app = await createNotesApi({ verifier });
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 4000) });
console.log(
  `notes API on http://127.0.0.1:${process.env.PORT ?? 4000} (${strict ? 'strict' : 'stateless'})`,
);
