import type { FastifyReply } from 'fastify';
import { RotorError } from '../errors.js';
import { sendError, toRotorError } from './error-handler.js';

/** One row of the OAuth error table: the status that answers a code, and its default description. */
export interface OAuthErrorSpec {
  readonly status: number;
  /** `error_description` (RFC 6749 §5.2) when the throw site gives no more specific one. */
  readonly description: string;
}

/**
 * The RFC 6749 §5.2 error codes the OAuth routes answer (RFC 7009 §2.2.1 and RFC 7662 §2.3 reuse
 * them), each with its status and default description in one table, the sibling of Rotor's own
 * `ERRORS` (errors.ts). Only codes a route answers are here: the OpenAPI document and
 * docs/oauth.md list exactly these.
 */
export const OAUTH_ERRORS = {
  /** §5.2: a missing, repeated or malformed parameter, or a request otherwise malformed. */
  invalid_request: { status: 400, description: 'The request is malformed.' },
  /** §5.2: client authentication failed; 401, with `WWW-Authenticate` when it tried HTTP Basic. */
  invalid_client: { status: 401, description: 'Client authentication failed.' },
  /** §5.2: the credentials or the refresh token are invalid, expired, revoked or re-used. */
  invalid_grant: {
    status: 400,
    description: 'The credentials or the refresh token are not valid.',
  },
  /** §5.2: a grant type this server does not support. */
  unsupported_grant_type: {
    status: 400,
    description: 'Only the password and refresh_token grants are supported.',
  },
  /** RFC 9449 §5: the DPoP proof is missing where required, or not valid. */
  invalid_dpop_proof: {
    status: 400,
    description: 'The DPoP proof is missing or not valid; make a new one for this request.',
  },
  /** RFC 9449 §8: send the proof again with the nonce of the `DPoP-Nonce` header. */
  use_dpop_nonce: {
    status: 400,
    description: 'Make the DPoP proof again with the nonce given in the DPoP-Nonce header.',
  },
} as const satisfies Record<string, OAuthErrorSpec>;

/** An RFC 6749 §5.2 error code (docs/oauth.md). */
export type OAuthErrorCode = keyof typeof OAUTH_ERRORS;

/** The status of each OAuth code, read from {@link OAUTH_ERRORS} (for the OpenAPI answers). */
export const OAUTH_ERROR_STATUS = Object.freeze(
  Object.fromEntries(Object.entries(OAUTH_ERRORS).map(([code, { status }]) => [code, status])),
) as { readonly [Code in OAuthErrorCode]: (typeof OAUTH_ERRORS)[Code]['status'] };

/**
 * A refusal of an OAuth route, answered in RFC 6749's shape; `message` (the `error_description`)
 * defaults to the code's description in {@link OAUTH_ERRORS}.
 */
export class OAuthError extends Error {
  /** The client tried HTTP Basic: a 401 then names the scheme it may retry with. */
  readonly basic: boolean;

  constructor(
    readonly code: OAuthErrorCode,
    description: string = OAUTH_ERRORS[code].description,
    options?: { basic?: boolean },
  ) {
    super(description);
    this.name = new.target.name;
    this.basic = options?.basic ?? false;
  }

  /** The HTTP status that answers this error. */
  get status(): number {
    return OAUTH_ERRORS[this.code].status;
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
    .code(error.status)
    .header('cache-control', 'no-store')
    .send({ error: error.code, error_description: error.message, message: error.message });
}
