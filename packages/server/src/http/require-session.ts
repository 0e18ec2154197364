import { fastifyCookie } from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import type { AccessTokenClaims } from '../tokens/access-token.js';
import { RotorError } from '../errors.js';
import type { Principal, Rotor } from '../rotor.js';
import type { SessionRow, UserRow } from '../store/store.js';
import { bearerTokenOf, checkBinding, dpopTokenOf } from './authenticate.js';
import { assertSameOrigin } from './csrf.js';
import { proofHeaderOf } from './dpop.js';
import { ACCESS_COOKIE, assertNoRepeatedRotorCookie } from './delivery.js';
import { sendError, toRotorError } from './error-handler.js';

/**
 * The caller's account as an application's routes get it: the user row without its password hash
 * or session epoch, so a route that returns `request.user` as it is leaks nothing.
 */
export type SessionUser = Omit<UserRow, 'password_hash' | 'session_epoch'>;

/** The caller of an application's own route: its session, its account (no hash), its claims. */
export interface SessionPrincipal {
  claims: AccessTokenClaims;
  session: SessionRow;
  user: SessionUser;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller (session, account, claims), set by `app.requireSession` in every case. */
    rotor?: SessionPrincipal;
    /** The caller's live session, set by `app.requireSession` on an application's own routes. */
    session?: SessionRow;
    /** The caller's account (without its password hash), set by `app.requireSession`. */
    user?: SessionUser;
    /** The verified claims of the caller's access token, set by `app.requireSession`. */
    claims?: AccessTokenClaims;
  }
}

/** The request headers a session is read from; Node's, Fastify's and Express's headers fit. */
export type SessionHeaders = Pick<
  IncomingHttpHeaders,
  'authorization' | 'cookie' | 'origin' | 'sec-fetch-site'
> & {
  /** The request's DPoP proof (issue 18), for a token bound to a key. */
  dpop?: string | string[] | undefined;
};

/**
 * The request a session is read for: its method and its URL as the server saw it (path and query,
 * with the application's mount path), what a DPoP proof names (`htm`, `htu` under the issuer's
 * origin). Without it a DPoP-bound token is refused, since its proof cannot be checked.
 */
export interface SessionTarget {
  method: string;
  url: string;
}

/**
 * The caller of a request made to an application's own route: its access token (`Authorization:
 * Bearer` first, then the `rotor_access` cookie, as on Rotor's routes) checked against the store
 * like `GET /auth/me`, so a revoked or expired session is refused at once, not when its token
 * expires. A token from the cookie also passes Rotor's CSRF rule (API.md, "CSRF"): the cookie is
 * ambient authority, a bearer header is not.
 * A token cookie sent twice (cookie tossing) is `invalid_request` (400), as on Rotor's routes.
 * @throws RotorError `missing_token`, `invalid_token`, `token_expired`, `session_expired`,
 *   `session_revoked` (401), `csrf_rejected` (403), `unavailable` (503)
 */
export async function principalFromHeaders(
  rotor: Rotor,
  headers: SessionHeaders,
  target?: SessionTarget,
): Promise<SessionPrincipal> {
  return forApplication(await authenticateHeaders(rotor, headers, target));
}

/**
 * The caller of `headers`' access token. A token bound to a DPoP key (issue 18) is accepted only
 * as `Authorization: DPoP` with a proof by that key for `target` and this token, as on Rotor's own
 * routes: copied without the key (as Bearer, in the cookie) it opens no application route either.
 */
async function authenticateHeaders(
  rotor: Rotor,
  headers: SessionHeaders,
  target: SessionTarget | undefined,
): Promise<Principal> {
  const { token, asDpop } = accessTokenFromHeaders(rotor, headers);
  const principal = rotor.authenticateFromCache(token) ?? (await rotor.authenticate(token));
  const jkt = principal.claims.cnf?.jkt;
  if (jkt !== undefined || asDpop) {
    await checkBinding(
      rotor,
      target && (() => proofTarget(rotor, headers, target)),
      token,
      jkt,
      asDpop,
    );
  }
  return principal;
}

/** The proof of `headers` and what it must name: the request's path under the issuer's origin. */
function proofTarget(rotor: Rotor, headers: SessionHeaders, target: SessionTarget) {
  let origin: string | undefined;
  try {
    origin = new URL(rotor.config.issuer).origin;
  } catch {
    origin = undefined;
  }
  const path = target.url.split('?')[0]!;
  return {
    proof: proofHeaderOf({ headers }),
    method: target.method,
    urls: origin === undefined ? [] : [`${origin}${path}`],
  };
}

/** The principal without the user's password hash and session epoch (Rotor's own business). */
function forApplication({ claims, session, user }: Principal): SessionPrincipal {
  const account: SessionUser = {
    id: user.id,
    email: user.email,
    name: user.name,
    created_at: user.created_at,
    email_verified_at: user.email_verified_at,
  };
  return { claims, session, user: account };
}

/**
 * The access token of the headers: `Authorization: Bearer` first, then the `rotor_access` cookie,
 * which must pass Rotor's CSRF rule (checked before the token is looked at).
 * @throws RotorError `missing_token`, `invalid_token` (`Bearer` without a token), `csrf_rejected`
 */
function accessTokenFromHeaders(
  rotor: Rotor,
  headers: SessionHeaders,
): { token: string; asDpop: boolean } {
  const dpop = dpopTokenOf(headers.authorization);
  if (dpop !== undefined) return { token: dpop, asDpop: true };
  const bearer = bearerTokenOf(headers.authorization);
  if (bearer !== undefined) return { token: bearer, asDpop: false };
  const cookie =
    headers.cookie !== undefined && headers.cookie.includes(ACCESS_COOKIE)
      ? fastifyCookie.parse(headers.cookie)[ACCESS_COOKIE]
      : undefined;
  if (!cookie) throw new RotorError('missing_token', 'This request needs an access token.');
  // Cookie tossing (a sibling subdomain's cookie sent first): refused as on Rotor's own routes.
  assertNoRepeatedRotorCookie(headers.cookie!);
  assertSameOrigin({ headers }, rotor.config.allowedOrigins);
  return { token: cookie, asDpop: false };
}

/**
 * `principalFromHeaders` for server-rendered pages: null when the request has no live session
 * (no token, a bad one, an ended session); a database outage still throws (`unavailable`), so a
 * page does not show a signed-in user as signed out because the store blinked.
 */
export async function sessionFromHeaders(
  rotor: Rotor,
  headers: SessionHeaders,
): Promise<SessionPrincipal | null> {
  try {
    return await principalFromHeaders(rotor, headers);
  } catch (error) {
    if (error instanceof RotorError && error.status < 500) return null;
    throw error;
  }
}

/**
 * A Fastify preHandler for an application's own routes: sets `request.session`, `request.user` and
 * `request.claims`, or answers the refusal in Rotor's JSON shape (`401` with `WWW-Authenticate`,
 * RFC 6750 §3.1). It answers itself rather than throwing, so the application's error handler (not
 * Rotor's) stays in charge of everything else.
 */
export function requireSessionHandler(rotor: Rotor) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      // Both caches answering (the common case): the check costs no promise beyond this hook's.
      // Without the password hash and session epoch, as the types and the Express handler promise.
      const principal = forApplication(
        await authenticateHeaders(rotor, request.headers, {
          method: request.method,
          url: request.url,
        }),
      );
      request.rotor = principal;
      // @fastify/session's request.session is its own (written over, its store would save
      // Rotor's row): beside it, Rotor's caller is on request.rotor only.
      if (request.session === undefined) {
        request.session = principal.session;
        request.user = principal.user;
        request.claims = principal.claims;
      }
    } catch (error) {
      const refusal = toRotorError(error);
      if (refusal.status >= 500) request.log.error({ err: error }, 'session check failed');
      await sendError(refusal, reply);
    }
  };
}
