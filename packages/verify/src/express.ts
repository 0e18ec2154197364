import { VerifyError } from './errors.js';
import {
  challengeHeadersOf,
  publicOriginOf,
  requestUrlOf,
  type AdapterOptions,
} from './lib/request-target.js';
import type { RequestHeaders, RotorClaims, Verifier } from './verifier.js';

/** The parts of Express's request and response the middleware uses (no dependency on express). */
interface RequestLike<Claims extends object> {
  headers: RequestHeaders & { host?: string | undefined };
  method: string;
  url: string;
  /** The path and query before a router stripped its mount path. */
  originalUrl?: string;
  /** `http` or `https` (Express: from `X-Forwarded-Proto` only with `trust proxy`). */
  protocol?: string;
  auth?: RotorClaims & Claims;
}
interface ResponseLike {
  status(code: number): ResponseLike;
  set(name: string, value: string): ResponseLike;
  json(body: unknown): unknown;
}

/**
 * Express middleware: verifies the access token (Bearer, or DPoP-bound with its proof, RFC 9449)
 * and sets `req.auth`, or answers `401` with `WWW-Authenticate` (a DPoP challenge for a DPoP
 * error), `DPoP-Nonce` when nonces are on, and the JSON shape. A proof must name the request's
 * method and its URL at `publicUrl` (set it behind a proxy), else at `req.protocol` and `Host`.
 * @example app.get('/notes', rotorExpress(verifier), (req, res) => res.json(notesOf(req.auth.sub)))
 * @example rotorExpress(verifier, { publicUrl: 'https://api.example.com' })
 */
export function rotorExpress<Claims extends object = object>(
  verifier: Verifier<Claims>,
  options: AdapterOptions = {},
) {
  const origin = publicOriginOf(options.publicUrl);
  return (
    request: RequestLike<Claims>,
    response: ResponseLike,
    next: (error?: unknown) => void,
  ): void => {
    const url = requestUrlOf(origin, {
      protocol: request.protocol ?? 'http',
      host: request.headers.host,
      path: request.originalUrl ?? request.url,
    });
    verifier.verifyRequest(request.headers, { method: request.method, url }).then(
      (claims) => {
        request.auth = claims;
        const nonce = verifier.dpopNonce();
        if (nonce !== undefined) response.set('DPoP-Nonce', nonce);
        next();
      },
      (error: unknown) => {
        if (!(error instanceof VerifyError)) return next(error);
        let answer = response.status(401);
        for (const [name, value] of Object.entries(challengeHeadersOf(error, verifier))) {
          answer = answer.set(name, value);
        }
        answer.json(error.toJSON());
      },
    );
  };
}
