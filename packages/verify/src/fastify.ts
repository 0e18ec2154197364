import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { VerifyError } from './errors.js';
import type { RotorClaims, Verifier } from './verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The verified claims, set by `app.rotorAuthenticate`; the app's own claims untyped here
     * (a request decoration has one type per app): read them typed with `authOf<Claims>(request)`.
     */
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
export async function rotorVerify<Claims extends object = object>(
  app: FastifyInstance,
  { verifier }: { verifier: Verifier<Claims> },
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
/**
 * The claims `app.rotorAuthenticate` verified, with the app's own typed as `Claims` (those of the
 * verifier given to `rotorVerify`); null on a route without the preHandler.
 * @example const auth = authOf<{ roles: string[] }>(request);
 */
export function authOf<Claims extends object = object>(
  request: FastifyRequest,
): (RotorClaims & Claims) | null {
  return request.auth as (RotorClaims & Claims) | null;
}

// Not encapsulated: the decorators are visible to the routes of the app that registers it.
(rotorVerify as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
