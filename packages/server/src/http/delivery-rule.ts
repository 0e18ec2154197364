/**
 * Which delivery a token response uses (docs/api.md, "Token delivery"): the one rule, for every
 * route that hands out tokens. `/auth/login` asks {@link loginDelivery}, `/auth/refresh`
 * {@link refreshDelivery}, `/oauth/token` takes {@link OAUTH_DELIVERY}; delivery.ts only carries
 * out the choice (cookies and body).
 */
import type { FastifyRequest } from 'fastify';
import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';

const DELIVERIES: readonly Delivery[] = ['split', 'cookies', 'body'];

/** Without a `Token-Delivery` header a login answers `split`: the browser default (API.md). */
export const DEFAULT_DELIVERY: Delivery = 'split';

/**
 * The OAuth token endpoint answers in the body only: RFC 6749 §5.1 puts both tokens in the JSON
 * response, and an OAuth client has no cookie jar of Rotor's to hold them.
 */
export const OAUTH_DELIVERY: Delivery = 'body';

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
 * The delivery a login answers in: the `Token-Delivery` header, else {@link DEFAULT_DELIVERY}.
 * A login holds no token yet, so any delivery may be asked for.
 * @throws RotorError `invalid_request` for an unknown `Token-Delivery`.
 */
export function loginDelivery(request: FastifyRequest): Delivery {
  return requestedDelivery(request) ?? DEFAULT_DELIVERY;
}

/** Where a refresh found its refresh token: the JSON body wins over the cookie (API.md). */
export type TokenSource = 'body' | 'cookie';

/**
 * The delivery a refresh answers in: the one rule, judged with the session's stored delivery
 * (`split` or `cookies`) inside the refresh's transaction, before anything is written.
 *
 * - A token from the body answers as asked, else in the body (API.md: a mobile client refreshes
 *   with a plain `{"refreshToken": …}`).
 * - A token from the cookie goes back only into the cookie, and the delivery only becomes stricter:
 *   `split` → `cookies` is allowed; `cookies` → `split`, and any cookie → `body`, is
 *   `400 invalid_request` (`details.header: 'Token-Delivery'`). Without the header, the session's
 *   own delivery. Script on an allowed origin can make the browser send the HttpOnly cookie
 *   (`credentials: 'include'`); were the answer's delivery its choice, it would read what HttpOnly
 *   hides from it (OWASP Session Management Cheat Sheet, "HttpOnly Attribute"): the refresh token
 *   itself (`body`, which would also clear the victim's cookie, so re-use detection never fires),
 *   or the access token of a `cookies` session (`split`).
 * @throws RotorError `invalid_request` for a delivery the token may not move to.
 */
export function refreshDelivery(
  requested: Delivery | undefined,
  source: TokenSource,
  stored: string,
): Delivery {
  if (source === 'body') return requested ?? 'body';
  const current: Delivery = stored === 'cookies' ? 'cookies' : 'split';
  if (requested === undefined) return current;
  if (requested === 'body' || (requested === 'split' && current === 'cookies')) {
    throw new RotorError(
      'invalid_request',
      `A refresh token sent in the cookie cannot be answered with Token-Delivery: ${requested}; ` +
        `this session allows ${current === 'cookies' ? 'cookies' : 'split or cookies'}.`,
      { details: { header: 'Token-Delivery' } },
    );
  }
  return requested;
}
