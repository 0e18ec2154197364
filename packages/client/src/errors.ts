/**
 * The error codes Rotor answers (docs/errors.md), as a list a program can read. The server keeps the
 * same codes in its error table; a test compares the two, since the packages share no types.
 */
export const ROTOR_ERROR_CODES = [
  'invalid_request',
  'invalid_credentials',
  'missing_token',
  'invalid_token',
  'token_expired',
  'session_expired',
  'session_revoked',
  'refresh_token_reused',
  'invalid_dpop_proof',
  'use_dpop_nonce',
  'invalid_link',
  'email_not_verified',
  'csrf_rejected',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'email_taken',
  'request_timeout',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'headers_too_large',
  'internal_error',
  'unavailable',
] as const;

/** A stable error code of Rotor's (docs/errors.md): `switch (error.code)` narrows. */
export type RotorErrorCode = (typeof ROTOR_ERROR_CODES)[number];

/**
 * The code of a {@link RotorClientError}: one of Rotor's, or the SDK's own: `network_error` (no
 * response arrived) and `http_error` (an answer without a Rotor code: a proxy's error page, or a
 * code this SDK does not know).
 */
export type RotorClientErrorCode = RotorErrorCode | 'network_error' | 'http_error';

/** The refusals of an access token that one refresh can cure. */
export type RetryableCode = 'token_expired' | 'invalid_token';

/**
 * The one rule for a refused request, kept by `client.fetch` and the axios adapter alike: a `401`
 * with `token_expired`, or with `invalid_token` (the token no longer valid, say its signing key
 * retired), is worth one refresh and one retry. Any other answer is final: a dead session
 * (`session_revoked`, `session_expired`) would refuse the retry too.
 * @example if (shouldRetry(response.status, body.error)) await auth.refused();
 */
export function shouldRetry(status: number, code: unknown): code is RetryableCode {
  return status === 401 && (code === 'token_expired' || code === 'invalid_token');
}

const KNOWN: ReadonlySet<string> = new Set(ROTOR_ERROR_CODES);

/** An error answered by Rotor (its stable `code` from API.md) or met on the way (`network_error`). */
export class RotorClientError extends Error {
  readonly code: RotorClientErrorCode;
  /** The HTTP status, or 0 when no response arrived. */
  readonly status: number;
  /** Seconds to wait before trying again, from the answer's `Retry-After` (429, 503), if any. */
  readonly retryAfter: number | undefined;
  /** The answer's `details`, if any: the field at fault, or why a session ended (`reason`). */
  readonly details: unknown;

  constructor(
    code: RotorClientErrorCode,
    status: number,
    message: string,
    options?: { cause?: unknown; retryAfter?: number; details?: unknown },
  ) {
    super(message, options);
    this.name = 'RotorClientError';
    this.code = code;
    this.status = status;
    this.retryAfter = options?.retryAfter;
    this.details = options?.details;
  }
}

/** `Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110, 10.2.3). */
function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Reads the JSON error shape of API.md from a response, whatever the body turns out to be. */
export async function readError(response: Response): Promise<RotorClientError> {
  let code: RotorClientErrorCode = 'http_error';
  let message = `HTTP ${response.status}`;
  let details: unknown;
  try {
    const body = (await response.clone().json()) as {
      error?: unknown;
      message?: unknown;
      details?: unknown;
    };
    if (typeof body.error === 'string' && KNOWN.has(body.error))
      code = body.error as RotorErrorCode;
    if (typeof body.message === 'string') message = body.message;
    details = body.details;
  } catch {
    // not JSON: keep the status
  }
  return new RotorClientError(code, response.status, message, {
    retryAfter: parseRetryAfter(response.headers.get('retry-after'), Date.now()),
    details,
  });
}
