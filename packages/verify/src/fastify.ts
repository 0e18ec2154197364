import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { VerifyError } from './errors.js';
import type { RotorClaims, Verifier } from './verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified claims, set by `app.rotorAuthenticate`. */
    auth: RotorClaims | null;
  }
  interface FastifyInstance {
    /** A preHandler: verifies the request's access token, or answers `401` with the JSON shape. */
    rotorAuthenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  }
}

/**
 * A Fastify plugin: `app.register(rotorVerify, { verifier })`, then protect routes with
 * `{ preHandler: app.rotorAuthenticate }` and read `request.auth`.
 */
export async function rotorVerify(
  app: FastifyInstance,
  { verifier }: { verifier: Verifier },
): Promise<void> {
  app.decorateRequest('auth', null);
  app.decorate('rotorAuthenticate', async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      request.auth = await verifier.verifyRequest(request.headers);
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      await reply.code(401).header('www-authenticate', error.wwwAuthenticate).send(error.toJSON());
    }
  });
}
// Not encapsulated: the decorators are visible to the routes of the app that registers it.
(rotorVerify as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
