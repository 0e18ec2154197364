import { VerifyError } from './errors.js';
import type { RotorClaims, Verifier } from './verifier.js';

/** The parts of Express's request and response the middleware uses (no dependency on express). */
interface RequestLike<Claims extends object> {
  headers: { authorization?: string | undefined; cookie?: string | undefined };
  auth?: RotorClaims & Claims;
}
interface ResponseLike {
  status(code: number): ResponseLike;
  set(name: string, value: string): ResponseLike;
  json(body: unknown): unknown;
}

/**
 * Express middleware: verifies the access token and sets `req.auth`, or answers `401` with
 * `WWW-Authenticate` and the JSON shape.
 * @example app.get('/notes', rotorExpress(verifier), (req, res) => res.json(notesOf(req.auth.sub)))
 */
export function rotorExpress<Claims extends object = object>(verifier: Verifier<Claims>) {
  return (
    request: RequestLike<Claims>,
    response: ResponseLike,
    next: (error?: unknown) => void,
  ): void => {
    verifier.verifyRequest(request.headers).then(
      (claims) => {
        request.auth = claims;
        next();
      },
      (error: unknown) => {
        if (!(error instanceof VerifyError)) return next(error);
        response.status(401).set('WWW-Authenticate', error.wwwAuthenticate).json(error.toJSON());
      },
    );
  };
}
