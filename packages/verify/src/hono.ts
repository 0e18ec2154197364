import type { MiddlewareHandler } from 'hono';
import { VerifyError } from './errors.js';
import {
  challengeHeadersOf,
  publicOriginOf,
  requestUrlOf,
  type AdapterOptions,
} from './lib/request-target.js';
import type { RotorClaims, Verifier } from './verifier.js';

/**
 * Hono middleware: verifies the access token (Bearer, or DPoP-bound with its proof, RFC 9449)
 * and sets `c.get('auth')`, or answers `401` with `WWW-Authenticate` (a DPoP challenge for a DPoP
 * error), `DPoP-Nonce` when nonces are on, and the JSON shape. A proof must name the request's
 * method and its URL at `publicUrl` (set it behind a proxy), else `c.req.url` as the runtime built
 * it (from the `Host` header on Node).
 * @example app.use('/notes/*', rotorHono(verifier, { publicUrl: 'https://api.example.com' }))
 */
export function rotorHono<Claims extends object = object>(
  verifier: Verifier<Claims>,
  options: AdapterOptions = {},
): MiddlewareHandler<{ Variables: { auth: RotorClaims & Claims } }> {
  const origin = publicOriginOf(options.publicUrl);
  return async (c, next) => {
    const seen = new URL(c.req.url);
    const url = requestUrlOf(origin ?? seen.origin, {
      protocol: seen.protocol,
      host: seen.host,
      path: `${seen.pathname}${seen.search}`,
    });
    try {
      c.set(
        'auth',
        await verifier.verifyRequest(
          {
            authorization: c.req.header('authorization'),
            cookie: c.req.header('cookie'),
            dpop: c.req.header('dpop'),
          },
          { method: c.req.method, url },
        ),
      );
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      for (const [name, value] of Object.entries(challengeHeadersOf(error, verifier))) {
        c.header(name, value);
      }
      return c.json(error.toJSON(), 401);
    }
    const nonce = verifier.dpopNonce();
    if (nonce !== undefined) c.header('DPoP-Nonce', nonce);
    await next();
    return undefined;
  };
}
