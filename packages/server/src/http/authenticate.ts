import type { FastifyRequest } from 'fastify';
import { RotorError } from '../errors.js';
import type { Principal, Rotor } from '../rotor.js';
import { ACCESS_COOKIE } from './delivery.js';

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

/** A preHandler for protected routes: a valid access token of a live session, or a typed 401. */
export function authenticate(rotor: Rotor) {
  return async (request: FastifyRequest): Promise<void> => {
    const token = accessTokenOf(request);
    if (token === undefined) throw new RotorError('missing_token');
    // Both caches answering: no promise beyond this hook's own.
    request.principal = rotor.authenticateFromCache(token) ?? (await rotor.authenticate(token));
  };
}

/** The principal set by {@link authenticate}. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new RotorError('missing_token');
  return request.principal;
}
