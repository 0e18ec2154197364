import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { VerifyError } from './errors.js';
import {
  challengeHeadersOf,
  publicOriginOf,
  requestUrlOf,
  type AdapterOptions,
} from './lib/request-target.js';
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
 * A Fastify plugin: `app.register(rotorVerify, { verifier, publicUrl })`, then protect routes with
 * `{ preHandler: app.rotorAuthenticate }` and read `request.auth`. Bearer tokens and DPoP-bound
 * tokens with their proof (RFC 9449) are verified; a proof must name the request's method and its
 * URL at `publicUrl` (set it behind a proxy), else at `request.protocol` and `request.host`.
 * A failure is `401` with `WWW-Authenticate` (a DPoP challenge for a DPoP error) and, with nonces,
 * `DPoP-Nonce`.
 * @example
 * await app.register(rotorVerify, { verifier, publicUrl: 'https://api.example.com' });
 * app.get('/notes', { preHandler: app.rotorAuthenticate }, async (request) => notesOf(request.auth!.sub));
 */
export async function rotorVerify<Claims extends object = object>(
  app: FastifyInstance,
  { verifier, publicUrl }: { verifier: Verifier<Claims> } & AdapterOptions,
): Promise<void> {
  const origin = publicOriginOf(publicUrl);
  app.decorateRequest('auth', null);
  app.decorate('rotorAuthenticate', async (request: FastifyRequest, reply: FastifyReply) => {
    const url = requestUrlOf(origin, {
      protocol: request.protocol,
      host: request.host,
      path: request.url,
    });
    try {
      request.auth = await verifier.verifyRequest(request.headers, { method: request.method, url });
      const nonce = verifier.dpopNonce();
      if (nonce !== undefined) reply.header('DPoP-Nonce', nonce);
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      await reply.code(401).headers(challengeHeadersOf(error, verifier)).send(error.toJSON());
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
