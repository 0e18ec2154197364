import type { FastifyReply } from 'fastify';
import { RotorError } from '../errors.js';
import { sendError, toRotorError } from './error-handler.js';

/**
 * The RFC 6749 §5.2 error codes the OAuth routes answer (RFC 7009 and RFC 7662 reuse them), with
 * the status beside each in one table, as `ERROR_STATUS` keeps Rotor's own.
 */
export const OAUTH_ERROR_STATUS = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unsupported_grant_type: 400,
} as const;

/** An RFC 6749 §5.2 error code (docs/oauth.md). */
export type OAuthErrorCode = keyof typeof OAUTH_ERROR_STATUS;

/** A refusal of an OAuth route, answered in RFC 6749's shape. */
export class OAuthError extends Error {
  constructor(
    readonly code: OAuthErrorCode,
    message: string,
    /** The client tried HTTP Basic: a 401 then names the scheme it may retry with. */
    readonly basic = false,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Malformed requests of any kind are `invalid_request`; limits keep their 429, failures their 5xx. */
export function toOAuthError(error: unknown): OAuthError | RotorError {
  if (error instanceof OAuthError) return error;
  const rotorError = toRotorError(error);
  // A spent budget keeps its 429 and Retry-After (RFC 6585 §4): a client told `invalid_request`
  // would not know to wait, nor for how long.
  return rotorError.status < 500 && rotorError.code !== 'rate_limited'
    ? new OAuthError('invalid_request', rotorError.message)
    : rotorError;
}

/**
 * Sends RFC 6749 §5.2's `{error, error_description}` (plus API.md's `message`), or, for a limit or
 * a failure, Rotor's own error shape.
 */
export function sendOAuthError(reply: FastifyReply, error: OAuthError | RotorError): FastifyReply {
  if (error instanceof RotorError) return sendError(error, reply);
  // RFC 6749 §5.2: a 401 for a client that tried HTTP Basic carries the scheme it may retry with.
  if (error.code === 'invalid_client' && error.basic)
    reply.header('www-authenticate', 'Basic realm="rotor"');
  return reply
    .code(OAUTH_ERROR_STATUS[error.code])
    .header('cache-control', 'no-store')
    .send({ error: error.code, error_description: error.message, message: error.message });
}
