/** One row of the error table: the HTTP status that answers a code, and its default message. */
export interface ErrorSpec {
  readonly status: number;
  /** For humans; a throw may pass a more specific one where its context adds something. */
  readonly message: string;
}

/**
 * Every error code of the HTTP contract (docs/errors.md), with its status and default message
 * beside it in one table, as Fastify's `lib/errors.js` keeps its own: a throw names the code, and
 * the words come from here unless the throw site knows more (the field, the header, the wait).
 * A `switch (err.code)` over {@link RotorErrorCode} narrows.
 */
export const ERRORS = {
  invalid_request: { status: 400, message: 'Invalid request.' },
  invalid_credentials: { status: 401, message: 'The email or password is incorrect.' },
  missing_token: { status: 401, message: 'This request needs an access token.' },
  invalid_token: { status: 401, message: 'The token is not valid.' },
  token_expired: { status: 401, message: 'The access token has expired; refresh it.' },
  session_expired: { status: 401, message: 'This session has expired; sign in again.' },
  session_revoked: {
    status: 401,
    message: 'This session was signed out or revoked; sign in again.',
  },
  refresh_token_reused: {
    status: 401,
    message:
      'This refresh token was already used; the session has been revoked for safety. Sign in again.',
  },
  invalid_dpop_proof: {
    status: 401,
    message: 'The DPoP proof is missing or not valid (RFC 9449); make a new one for this request.',
  },
  use_dpop_nonce: {
    status: 401,
    message: 'Make the DPoP proof again with the nonce given in the DPoP-Nonce header.',
  },
  invalid_link: {
    status: 400,
    message: 'This link is unknown, used, expired or replaced by a newer one; ask for a new one.',
  },
  email_not_verified: {
    status: 403,
    message: 'Verify your email address first: follow the link mailed to it, or ask for a new one.',
  },
  csrf_rejected: { status: 403, message: 'Cross-site requests are not allowed.' },
  forbidden: { status: 403, message: 'This request is not allowed from here.' },
  not_found: { status: 404, message: 'No such route.' },
  method_not_allowed: { status: 405, message: 'This method is not allowed on this path.' },
  email_taken: { status: 409, message: 'An account with this email already exists.' },
  request_timeout: {
    status: 408,
    message:
      'The request did not arrive in time (ROTOR_HEADERS_TIMEOUT, ROTOR_REQUEST_TIMEOUT); send it at once.',
  },
  payload_too_large: { status: 413, message: 'The request body is over 64 KiB.' },
  unsupported_media_type: { status: 415, message: 'Send the body as application/json.' },
  rate_limited: { status: 429, message: 'Too many attempts; try again later.' },
  headers_too_large: { status: 431, message: 'The request headers are over 16 KiB.' },
  internal_error: { status: 500, message: 'Something went wrong on the server.' },
  unavailable: { status: 503, message: 'The database cannot be reached; try again shortly.' },
} as const satisfies Record<string, ErrorSpec>;

/** A stable, documented error code (see docs/errors.md). */
export type RotorErrorCode = keyof typeof ERRORS;

/**
 * The status of each code, read from {@link ERRORS}: the table's status column on its own, for the
 * callers that need only the number (the error handler, the OpenAPI answers, the docs test).
 */
export const ERROR_STATUS = Object.freeze(
  Object.fromEntries(Object.entries(ERRORS).map(([code, { status }]) => [code, status])),
) as { readonly [Code in RotorErrorCode]: (typeof ERRORS)[Code]['status'] };

/**
 * Base of every error Rotor raises on purpose; `code` is stable, `message` is for humans and
 * defaults to the code's message in {@link ERRORS}.
 * @example throw new RotorError('missing_token');
 * @example throw new RotorError('invalid_request', 'The email address is not valid.', { details: { field: 'email' } });
 */
export class RotorError extends Error {
  readonly code: RotorErrorCode;
  readonly details: unknown;
  /**
   * The scheme of a 401's `WWW-Authenticate` challenge: `DPoP` (RFC 9449 §7.1) for a proof's fault
   * or a token bound to a key, else RFC 6750's `Bearer`.
   */
  readonly scheme: 'Bearer' | 'DPoP';

  constructor(
    code: RotorErrorCode,
    message: string = ERRORS[code].message,
    options?: { cause?: unknown; details?: unknown; scheme?: 'Bearer' | 'DPoP' },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
    this.scheme =
      options?.scheme ??
      (code === 'invalid_dpop_proof' || code === 'use_dpop_nonce' ? 'DPoP' : 'Bearer');
  }

  /** The HTTP status that answers this error. */
  get status(): number {
    return ERRORS[this.code].status;
  }
}

/** The configuration is invalid; the message names the variable. Start-up stops. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}
