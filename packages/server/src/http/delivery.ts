import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Delivery, RotorConfig } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import type { TokenGrant } from '../rotor.js';
import { DEVICE_TOKEN_TTL_SECONDS } from '../tokens/device-token.js';
import { presentUser } from './presenters.js';

export const REFRESH_COOKIE = 'rotor_refresh';
export const ACCESS_COOKIE = 'rotor_access';
/** The device token of a browser (OWASP device cookies), sent only to the login route. */
export const DEVICE_COOKIE = 'rotor_device';
const DEVICE_COOKIE_PATH = '/auth/login';
const DELIVERIES: readonly Delivery[] = ['split', 'cookies', 'body'];

/** The `Token-Delivery` header: undefined when absent, `invalid_request` when unknown. */
export function requestedDelivery(request: FastifyRequest): Delivery | undefined {
  const value = request.headers['token-delivery'];
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  const delivery = DELIVERIES.find((d) => d === text.trim().toLowerCase());
  if (!delivery) {
    throw new RotorError('invalid_request', 'Token-Delivery must be split, cookies or body.', {
      details: { header: 'Token-Delivery' },
    });
  }
  return delivery;
}

/**
 * Sends a token response (API.md) in the chosen delivery: the access token in the body or the
 * `rotor_access` cookie, the refresh token in the body or the `rotor_refresh` cookie.
 */
export function sendTokens(
  reply: FastifyReply,
  config: RotorConfig,
  grant: TokenGrant,
  delivery: Delivery,
  now: number,
  stale: { accessCookie?: boolean; refreshCookie?: boolean } = {},
): FastifyReply {
  const expiresIn = Math.max(0, grant.accessExpiresAt - now);
  const refreshExpiresIn = Math.max(0, grant.refreshExpiresAt - now);
  const body: Record<string, unknown> = { tokenType: 'Bearer' };
  if (delivery !== 'cookies') body.accessToken = grant.accessToken;
  body.expiresIn = expiresIn;
  if (delivery === 'body') body.refreshToken = grant.refreshToken;
  body.refreshExpiresIn = refreshExpiresIn;
  body.sessionId = grant.session.id;
  body.user = presentUser(grant.user);
  // A body client keeps its device token like its refresh token; a browser gets it as a cookie
  // that only the login route sees.
  if (grant.deviceToken !== undefined) {
    if (delivery === 'body') body.deviceToken = grant.deviceToken;
    else {
      setCookie(
        reply,
        config,
        DEVICE_COOKIE,
        grant.deviceToken,
        DEVICE_COOKIE_PATH,
        DEVICE_TOKEN_TTL_SECONDS,
      );
    }
  }

  if (delivery !== 'body') {
    setCookie(reply, config, REFRESH_COOKIE, grant.refreshToken, '/auth', refreshExpiresIn);
  }
  if (delivery === 'cookies') {
    setCookie(reply, config, ACCESS_COOKIE, grant.accessToken, '/', expiresIn);
  } else if (stale.accessCookie) {
    // A client that moves from `cookies` to another delivery must not keep a stale access cookie.
    clearCookie(reply, config, ACCESS_COOKIE, '/');
  }
  // A cookie-held refresh token answered in the body is rotated: the cookie would only hold a dead one.
  if (delivery === 'body' && stale.refreshCookie)
    clearCookie(reply, config, REFRESH_COOKIE, '/auth');
  // RFC 6749 §5.1: token responses are never cached.
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(body);
}

/** Clears both cookies, with the attributes they were set with so browsers match them. */
export function clearAuthCookies(reply: FastifyReply, config: RotorConfig): void {
  clearCookie(reply, config, REFRESH_COOKIE, '/auth');
  clearCookie(reply, config, ACCESS_COOKIE, '/');
}

function setCookie(
  reply: FastifyReply,
  config: RotorConfig,
  name: string,
  value: string,
  path: string,
  maxAge: number,
): void {
  reply.setCookie(name, value, {
    httpOnly: true,
    secure: config.cookieSecure,
    sameSite: 'strict',
    path,
    maxAge,
  });
}

function clearCookie(reply: FastifyReply, config: RotorConfig, name: string, path: string): void {
  reply.setCookie(name, '', {
    httpOnly: true,
    secure: config.cookieSecure,
    sameSite: 'strict',
    path,
    maxAge: 0,
    expires: new Date(0),
  });
}
