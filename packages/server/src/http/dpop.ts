import type { FastifyRequest } from 'fastify';
import { RotorError } from '../errors.js';
import type { Rotor } from '../rotor.js';

/**
 * The URLs a request's DPoP proof may name as `htu` (RFC 9449 §4.3 step 9): the request's path
 * under the issuer's origin (`ROTOR_ISSUER`: the public URL, behind a proxy too), without the
 * query. In development, where the issuer is on loopback, also under the loopback origin the
 * request names (a browser on `localhost` beside an issuer of `127.0.0.1`). Never an origin from
 * the `Host` header otherwise: a proof made for another server must not pass here by a forged Host.
 */
export function requestUrls(request: FastifyRequest, issuer: string): string[] {
  const path = request.url.split('?')[0]!;
  let origin: URL;
  try {
    origin = new URL(issuer);
  } catch {
    return [];
  }
  const urls = [`${origin.origin}${path}`];
  if (LOOPBACK.has(origin.hostname) && LOOPBACK.has(request.hostname)) {
    urls.push(`${request.protocol}://${request.host}${path}`);
  }
  return urls;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * The request's single `DPoP` header (RFC 9449 §4.3 step 1: exactly one); undefined without one.
 * Node joins repeated headers it does not know with a comma, which no compact JWS contains.
 */
export function proofHeaderOf(request: Pick<FastifyRequest, 'headers'>): string | undefined {
  const header = request.headers.dpop;
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || header.includes(',')) {
    throw new RotorError('invalid_dpop_proof', 'Send exactly one DPoP header.');
  }
  return header.trim();
}

/**
 * The key thumbprint (`jkt`) of a sign-in's or refresh's DPoP proof, checked against this request
 * (no access token: §4.3 `ath` applies to resource requests). Undefined without a proof, or with
 * `ROTOR_DPOP=off`; `ROTOR_DPOP=required` refuses a request without one.
 * Throws `invalid_dpop_proof`, `use_dpop_nonce`.
 */
export async function proofKeyOf(
  rotor: Rotor,
  request: FastifyRequest,
): Promise<string | undefined> {
  if (rotor.dpop.mode === 'off') return undefined;
  const proof = proofHeaderOf(request);
  if (proof === undefined) {
    if (rotor.dpop.mode === 'required') {
      throw new RotorError(
        'invalid_dpop_proof',
        'This server requires a DPoP proof (ROTOR_DPOP=required); send one in the DPoP header.',
      );
    }
    return undefined;
  }
  const checked = await rotor.dpop.check(proof, {
    method: request.method,
    urls: requestUrls(request, rotor.config.issuer),
  });
  return checked?.jkt;
}

/**
 * The key of a logout's DPoP proof, or undefined when it has none or a bad one: a logout stays
 * idempotent (204), and only a proof by a bound session's key ends that session.
 */
export async function proofKeyOrNothing(
  rotor: Rotor,
  request: FastifyRequest,
): Promise<string | undefined> {
  try {
    return await proofKeyOf(rotor, request);
  } catch (error) {
    if (error instanceof RotorError && error.status === 401) return undefined;
    throw error;
  }
}
