import type { FastifyRequest } from 'fastify';
import { RotorError } from '../errors.js';

/**
 * The CSRF rule of API.md for a cookie-authenticated request: a present `Origin` must be allowed;
 * without one, `Sec-Fetch-Site: cross-site` is refused. Requests with neither (curl, native apps)
 * pass: they cannot be forged by a browser that sends neither.
 */
export function assertSameOrigin(
  request: Pick<FastifyRequest, 'headers'>,
  allowedOrigins: readonly string[],
): void {
  const origin = request.headers.origin;
  if (origin !== undefined) {
    if (!allowedOrigins.includes(origin)) {
      throw new RotorError(
        'csrf_rejected',
        `Requests from origin ${JSON.stringify(origin).slice(0, 200)} are not allowed (ROTOR_ALLOWED_ORIGINS lists those that are).`,
      );
    }
    return;
  }
  if (request.headers['sec-fetch-site'] === 'cross-site') {
    throw new RotorError('csrf_rejected');
  }
}
