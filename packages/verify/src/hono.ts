import type { MiddlewareHandler } from 'hono';
import { VerifyError } from './errors.js';
import type { RotorClaims, Verifier } from './verifier.js';

/**
 * Hono middleware: verifies the access token and sets `c.get('auth')`, or answers `401` with
 * `WWW-Authenticate` and the JSON shape.
 * @example app.use('/notes/*', rotorHono(verifier))
 */
export function rotorHono<Claims extends object = object>(
  verifier: Verifier<Claims>,
): MiddlewareHandler<{ Variables: { auth: RotorClaims & Claims } }> {
  return async (c, next) => {
    try {
      c.set(
        'auth',
        await verifier.verifyRequest({
          authorization: c.req.header('authorization'),
          cookie: c.req.header('cookie'),
        }),
      );
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      c.header('WWW-Authenticate', error.wwwAuthenticate);
      return c.json(error.toJSON(), 401);
    }
    await next();
    return undefined;
  };
}
