import { DPOP_ALGORITHMS } from '@rotor/verify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, RotorError, type RotorErrorCode } from '../errors.js';
import { RateLimitedError } from '../limits/limiter.js';
import { isDatabaseUnavailable } from '../store/unavailable.js';
import { warnIfUndeclared } from './route-answers.js';

/** Fastify's own error codes, mapped to the codes of API.md. */
const FASTIFY_CODES: Record<string, RotorErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_BAD_URL: 'invalid_request',
  FST_ERR_NOT_FOUND: 'not_found',
};

/** Turns any error into a {@link RotorError}: ours as they are, Fastify's and the driver's by code. */
export function toRotorError(error: unknown): RotorError {
  if (error instanceof RotorError) return error;
  const e = error as Partial<FastifyError> & { code?: string };
  if (e.validation) {
    const field = fieldOf(e.validation[0]);
    return new RotorError('invalid_request', `Invalid request: ${e.message ?? 'bad input'}.`, {
      cause: error,
      // The same shape as every other refusal of a field: `details.field`, as the client sent it.
      ...(field !== undefined && { details: { field } }),
    });
  }
  const mapped = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined;
  if (mapped) {
    // Fastify's words say what was malformed; the other codes need no more than the table's.
    const message =
      mapped === 'invalid_request' ? `Invalid request: ${e.message ?? 'bad input'}.` : undefined;
    return new RotorError(mapped, message, { cause: error });
  }
  if (error instanceof SyntaxError && e.statusCode === 400) {
    return new RotorError('invalid_request', 'The body is not valid JSON.', { cause: error });
  }
  if (isDatabaseUnavailable(error)) {
    return new RotorError('unavailable', undefined, { cause: error });
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code =
      e.statusCode === 404
        ? 'not_found'
        : e.statusCode === 413
          ? 'payload_too_large'
          : 'invalid_request';
    return new RotorError(code, e.message ?? ERRORS.invalid_request.message, { cause: error });
  }
  return new RotorError('internal_error', undefined, { cause: error });
}

/** The DPoP challenge's `algs` (RFC 9449 §7.1): the proof algorithms Rotor accepts. */
const DPOP_ALGS = `algs="${DPOP_ALGORITHMS.join(' ')}"`;

/**
 * `WWW-Authenticate` of a 401: RFC 6750 §3.1 (plain `Bearer` for a missing token), or RFC 9449
 * §7.1 for DPoP, whose error is the proof's code or `invalid_token` for the token itself.
 */
function challengeOf(error: RotorError): string {
  if (error.scheme === 'DPoP') {
    if (error.code === 'missing_token') return `DPoP ${DPOP_ALGS}`;
    const code =
      error.code === 'invalid_dpop_proof' || error.code === 'use_dpop_nonce'
        ? error.code
        : 'invalid_token';
    return `DPoP error="${code}", ${DPOP_ALGS}`;
  }
  return error.code === 'missing_token' ? 'Bearer' : 'Bearer error="invalid_token"';
}

/** An error's answer in the JSON shape of API.md: status, headers and body. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error: string; message: string; details?: unknown };
}

/**
 * The answer to `error`: its status, `WWW-Authenticate` on 401 (RFC 6750 §3.1), `Retry-After` on
 * `unavailable` and `rate_limited`, the JSON body. Also for frameworks other than Fastify
 * (`@rotor/server/express`).
 */
export function errorAnswer(error: RotorError): ErrorAnswer {
  const status = error.status;
  const headers: Record<string, string> = {};
  if (status === 401 && error.code !== 'invalid_credentials') {
    headers['www-authenticate'] = challengeOf(error);
  }
  if (error.code === 'unavailable') headers['retry-after'] = '5';
  if (error instanceof RateLimitedError) headers['retry-after'] = String(error.retryAfterSeconds);
  const body: ErrorAnswer['body'] = { error: error.code, message: error.message };
  if (error.details !== undefined) body.details = error.details;
  return { status, headers, body };
}

/**
 * Sends the JSON error shape of API.md ({@link errorAnswer}), and notes the code on the request
 * for the metrics and the request log.
 */
export function sendError(error: RotorError, reply: FastifyReply): FastifyReply {
  reply.request.rotorErrorCode = error.code;
  const { status, headers, body } = errorAnswer(error);
  return reply.code(status).headers(headers).type('application/json; charset=utf-8').send(body);
}

/**
 * Fastify's error handler: every error, ours or the framework's, becomes the JSON shape. A failure
 * (5xx) is logged at `error` with its cause; a refusal at `info` with its code, unless
 * `refusalsLogged` is false: the standalone server's request line carries the code already
 * (request-log.ts), and one line per request is its rule.
 */
export function createErrorHandler({ refusalsLogged }: { refusalsLogged: boolean }) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const rotorError = toRotorError(error);
    warnIfUndeclared(request, rotorError.code);
    if (rotorError.status >= 500) {
      request.log.error({ err: error }, 'request failed');
    } else if (refusalsLogged) {
      request.log.info({ code: rotorError.code }, 'request refused');
    }
    return sendError(rotorError, reply);
  };
}

/**
 * The field a schema refusal is about, as the client named it: a missing property's name
 * (`required`), else the first segment of the failing value's path (`/newPassword` → `newPassword`).
 * Undefined when the whole body is wrong (not an object).
 */
function fieldOf(
  failure: { instancePath?: string; params?: Record<string, unknown> } | undefined,
): string | undefined {
  if (failure === undefined) return undefined;
  const missing = failure.params?.missingProperty;
  if (typeof missing === 'string') return missing;
  const first = failure.instancePath?.split('/')[1];
  return first ? decodeURIComponent(first.replace(/~1/g, '/').replace(/~0/g, '~')) : undefined;
}
