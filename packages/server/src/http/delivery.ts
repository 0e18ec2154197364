import type { FastifyReply } from 'fastify';
import type { Delivery, RotorConfig } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import type { TokenGrant } from '../rotor.js';
import { DEVICE_TOKEN_TTL_SECONDS } from '../tokens/device-token.js';
import { presentUser } from './presenters.js';

/**
 * Every cookie Rotor sets, with the path it is set on (under the prefix Rotor is mounted at:
 * {@link cookiePath}). Setting and clearing take a cookie from this
 * table only, and the duplicate-cookie check ({@link assertNoRepeatedRotorCookie}) reads the same
 * table, so a cookie added here is covered by all three.
 */
const COOKIES = {
  refresh: { name: 'rotor_refresh', path: '/auth' },
  access: { name: 'rotor_access', path: '/' },
  /** The device token of a browser (OWASP device cookies), sent only to the login route. */
  device: { name: 'rotor_device', path: '/auth/login' },
} as const;
type RotorCookie = (typeof COOKIES)[keyof typeof COOKIES];

export const REFRESH_COOKIE = COOKIES.refresh.name;
export const ACCESS_COOKIE = COOKIES.access.name;
export const DEVICE_COOKIE = COOKIES.device.name;
/**
 * The cookies a request may not carry twice: the token cookies, read by every route that reads a
 * cookie. Not `rotor_device`: only the login reads it, and it tries every value it gets, so a
 * tossed device cookie can neither win (it is signed for one account) nor block the sign-in.
 */
const COOKIE_NAMES: ReadonlySet<string> = new Set([COOKIES.refresh.name, COOKIES.access.name]);

/**
 * Refuses a `Cookie` header that names a Rotor cookie more than once: `400 invalid_request`,
 * before any route runs, so nothing changes. A browser sends two values when a sibling subdomain
 * set one for the parent domain (cookie tossing: RFC 6265 §8.6, "Weak Integrity"), and servers
 * "SHOULD NOT rely upon the serialization order" (RFC 6265 §4.2.2): the cookie parser keeps the
 * first, which may be the attacker's (the victim's page then refreshes into the attacker's session)
 * or a dead one (the victim locked out). Node joins repeated `Cookie` headers with `; `, so the one
 * header holds them all. Names are compared as the parser reads them: trimmed of spaces and tabs,
 * case kept.
 */
export function assertNoRepeatedRotorCookie(header: string): void {
  const seen: string[] = [];
  for (const { name } of cookiePairs(header)) {
    if (!COOKIE_NAMES.has(name)) continue;
    if (seen.includes(name)) {
      throw new RotorError('invalid_request', `The cookie ${name} is sent more than once.`, {
        details: { cookie: name },
      });
    }
    seen.push(name);
  }
}

/**
 * The `name=value` pairs of a raw `Cookie` header, every one, in order, read as the cookie parser
 * reads names: a pair without `=` skipped, the name trimmed of spaces and tabs, case kept. The one
 * reading of the raw header for the checks the parser cannot make (it keeps only the first value
 * of a name).
 */
function* cookiePairs(header: string): Generator<{ name: string; value: string }> {
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    yield {
      name: pair.slice(0, eq).replace(/^[ \t]+|[ \t]+$/g, ''),
      value: pair.slice(eq + 1).replace(/^[ \t]+|[ \t]+$/g, ''),
    };
  }
}

/**
 * Sends a token response (API.md) in the chosen delivery: the access token in the body or the
 * `rotor_access` cookie, the refresh token in the body or the `rotor_refresh` cookie. Which delivery
 * is delivery-rule.ts's choice.
 */
export function sendTokens(
  reply: FastifyReply,
  config: RotorConfig,
  grant: TokenGrant,
  delivery: Delivery,
  now: number,
  stale: { accessCookie?: boolean } = {},
): FastifyReply {
  const expiresIn = Math.max(0, grant.accessExpiresAt - now);
  const refreshExpiresIn = Math.max(0, grant.refreshExpiresAt - now);
  const body: Record<string, unknown> = { tokenType: grant.tokenType };
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
      setCookie(reply, config, COOKIES.device, grant.deviceToken, DEVICE_TOKEN_TTL_SECONDS);
    }
  }

  if (delivery !== 'body')
    setCookie(reply, config, COOKIES.refresh, grant.refreshToken, refreshExpiresIn);
  if (delivery === 'cookies') {
    setCookie(reply, config, COOKIES.access, grant.accessToken, expiresIn);
  } else if (stale.accessCookie) {
    // A client that moves from `cookies` to another delivery must not keep a stale access cookie.
    clearCookie(reply, config, COOKIES.access);
  }
  // RFC 6749 §5.1: token responses are never cached.
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(body);
}

/** Clears both token cookies, with the attributes they were set with so browsers match them. */
export function clearAuthCookies(reply: FastifyReply, config: RotorConfig): void {
  clearCookie(reply, config, COOKIES.refresh);
  clearCookie(reply, config, COOKIES.access);
}

/**
 * A cookie's path where Rotor is mounted (`/rotor` → `/rotor/auth`): the refresh and device cookies
 * follow Rotor's routes, the access cookie stays on `/` so it reaches the application's own routes
 * (`requireSession`). The prefix is that of the routes' Fastify instance ('' when standalone).
 */
function cookiePath(reply: FastifyReply, cookie: RotorCookie): string {
  return cookie.path === '/' ? '/' : `${reply.server.prefix}${cookie.path}`;
}

function setCookie(
  reply: FastifyReply,
  config: RotorConfig,
  cookie: RotorCookie,
  value: string,
  maxAgeSeconds: number,
): void {
  reply.setCookie(cookie.name, value, {
    httpOnly: true,
    secure: config.cookieSecure,
    sameSite: 'strict',
    path: cookiePath(reply, cookie),
    maxAge: maxAgeSeconds,
  });
}

function clearCookie(reply: FastifyReply, config: RotorConfig, cookie: RotorCookie): void {
  reply.setCookie(cookie.name, '', {
    httpOnly: true,
    secure: config.cookieSecure,
    sameSite: 'strict',
    path: cookiePath(reply, cookie),
    maxAge: 0,
    expires: new Date(0),
  });
}

/** Device tokens a login may try, at most: a browser holds one; more are tossed cookies. */
const MAX_DEVICE_COOKIES = 4;

/**
 * Every value of the `rotor_device` cookie in a raw `Cookie` header, in order, at most four (the
 * cookie parser keeps only the first; a sibling subdomain may have tossed another one in front).
 */
export function deviceCookieValues(header: string | undefined): string[] {
  if (header === undefined || !header.includes(COOKIES.device.name)) return [];
  const values: string[] = [];
  for (const { name, value } of cookiePairs(header)) {
    if (name !== COOKIES.device.name) continue;
    values.push(value);
    if (values.length === MAX_DEVICE_COOKIES) break;
  }
  return values;
}
