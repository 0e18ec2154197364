import type { FastifyRequest } from 'fastify';
import { RotorError } from '../errors.js';
import type { Principal, Rotor } from '../rotor.js';
import { ACCESS_COOKIE } from './delivery.js';
import { proofHeaderOf, requestUrls } from './dpop.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by {@link authenticate} on protected routes. */
    principal?: Principal;
  }
}

/**
 * The access token of a request: `Authorization: Bearer` wins over the `rotor_access` cookie
 * (API.md). Undefined when there is none.
 */
export function accessTokenOf(request: FastifyRequest): string | undefined {
  return (
    bearerTokenOf(request.headers.authorization) ?? (request.cookies[ACCESS_COOKIE] || undefined)
  );
}

/**
 * The token of an `Authorization: Bearer` header; undefined without a Bearer header.
 * @throws RotorError `invalid_token` for `Bearer` with no token after it.
 */
export function bearerTokenOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer(?:\s+(.*))?$/i.exec(header.trim());
  if (!match) return undefined;
  const token = match[1]?.trim();
  if (!token) throw new RotorError('invalid_token', 'The Authorization header has no token.');
  return token;
}

/**
 * The token of an `Authorization: DPoP` header (RFC 9449 §7.1); undefined without a DPoP header.
 * @throws RotorError `invalid_token` for `DPoP` with no token after it.
 */
export function dpopTokenOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^DPoP(?:\s+(.*))?$/i.exec(header.trim());
  if (!match) return undefined;
  const token = match[1]?.trim();
  if (!token) {
    throw new RotorError('invalid_token', 'The Authorization header has no token.', {
      scheme: 'DPoP',
    });
  }
  return token;
}

/**
 * A preHandler for protected routes: a valid access token of a live session, or a typed 401.
 * A token bound to a key (`cnf.jkt`, issue 18) is accepted only as `Authorization: DPoP` with a
 * proof by that key for this request and this token (RFC 9449 §7); sent as `Bearer` or in the
 * cookie it is refused with a DPoP challenge, whoever holds it.
 */
export function authenticate(rotor: Rotor) {
  return async (request: FastifyRequest): Promise<void> => {
    request.principal = await authenticateRequest(rotor, request);
  };
}

/** The caller of a request, as {@link authenticate} judges it; throws its 401s. */
export async function authenticateRequest(
  rotor: Rotor,
  request: FastifyRequest,
): Promise<Principal> {
  const dpopToken = dpopTokenOf(request.headers.authorization);
  const token = dpopToken ?? accessTokenOf(request);
  if (token === undefined) throw new RotorError('missing_token');
  // Both caches answering: no promise beyond this hook's own.
  const principal = rotor.authenticateFromCache(token) ?? (await rotor.authenticate(token));
  const jkt = principal.claims.cnf?.jkt;
  if (jkt !== undefined || dpopToken !== undefined) {
    await checkBinding(
      rotor,
      () => ({
        proof: proofHeaderOf(request),
        method: request.method,
        urls: requestUrls(request, rotor.config.issuer),
      }),
      token,
      jkt,
      dpopToken !== undefined,
    );
  }
  return principal;
}

/**
 * RFC 9449 §7.1: the scheme matches the token's binding, and the proof is by the bound key.
 * `target` gives the request's proof and what it is checked against; undefined where the request
 * is not known (headers only): a bound token is then refused, as no proof can be checked.
 */
export async function checkBinding(
  rotor: Rotor,
  target:
    (() => { proof: string | undefined; method: string; urls: readonly string[] }) | undefined,
  token: string,
  jkt: string | undefined,
  asDpop: boolean,
): Promise<void> {
  if (jkt === undefined) {
    throw new RotorError(
      'invalid_token',
      'This access token is not bound to a key; send it as Bearer.',
      {
        scheme: 'DPoP',
      },
    );
  }
  if (!asDpop) {
    throw new RotorError(
      'invalid_token',
      'This access token is bound to a key: send it as "Authorization: DPoP" with a proof.',
      { scheme: 'DPoP' },
    );
  }
  if (rotor.dpop.mode === 'off') {
    throw new RotorError('invalid_token', 'DPoP is off on this server (ROTOR_DPOP=off).', {
      scheme: 'DPoP',
    });
  }
  if (target === undefined) {
    throw new RotorError(
      'invalid_token',
      'This access token is bound to a key; a session read from headers alone cannot check its proof.',
      { scheme: 'DPoP' },
    );
  }
  const { proof: header, method, urls } = target();
  const proof = await rotor.dpop.check(header, { method, urls, accessToken: token });
  if (proof === undefined) {
    throw new RotorError('invalid_dpop_proof', 'A DPoP-bound token needs a DPoP proof header.');
  }
  if (proof.jkt !== jkt) {
    throw new RotorError(
      'invalid_dpop_proof',
      'The DPoP proof is not made by the key this token is bound to.',
    );
  }
}

/** The principal set by {@link authenticate}. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new RotorError('missing_token');
  return request.principal;
}
