/** An error answered by Rotor (its stable `code` from API.md) or met on the way (`network_error`). */
export class RotorClientError extends Error {
  readonly code: string;
  /** The HTTP status, or 0 when no response arrived. */
  readonly status: number;
  /** Seconds to wait before trying again, from the answer's `Retry-After` (429, 503), if any. */
  readonly retryAfter: number | undefined;
  /** The answer's `details`, if any: the field at fault, or why a session ended (`reason`). */
  readonly details: unknown;

  constructor(
    code: string,
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
  let code = 'http_error';
  let message = `HTTP ${response.status}`;
  let details: unknown;
  try {
    const body = (await response.clone().json()) as {
      error?: unknown;
      message?: unknown;
      details?: unknown;
    };
    if (typeof body.error === 'string') code = body.error;
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
