/**
 * Every error code of the HTTP contract (API.md), with its status beside it in one table.
 * A `switch (err.code)` over {@link RotorErrorCode} narrows.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_credentials: 401,
  missing_token: 401,
  invalid_token: 401,
  token_expired: 401,
  session_expired: 401,
  session_revoked: 401,
  refresh_token_reused: 401,
  csrf_rejected: 403,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  email_taken: 409,
  request_timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  headers_too_large: 431,
  internal_error: 500,
  unavailable: 503,
} as const;

/** A stable, documented error code (see docs/errors.md). */
export type RotorErrorCode = keyof typeof ERROR_STATUS;

/** Base of every error Rotor raises on purpose; `code` is stable, `message` is for humans. */
export class RotorError extends Error {
  readonly code: RotorErrorCode;
  readonly details: unknown;

  constructor(
    code: RotorErrorCode,
    message: string,
    options?: { cause?: unknown; details?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }

  /** The HTTP status that answers this error. */
  get status(): number {
    return ERROR_STATUS[this.code];
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
