/** An error answered by Rotor (its stable `code` from API.md) or met on the way (`network_error`). */
export class RotorClientError extends Error {
  readonly code: string;
  /** The HTTP status, or 0 when no response arrived. */
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RotorClientError';
    this.code = code;
    this.status = status;
  }
}

/** Reads the JSON error shape of API.md from a response, whatever the body turns out to be. */
export async function readError(response: Response): Promise<RotorClientError> {
  let code = 'http_error';
  let message = `HTTP ${response.status}`;
  try {
    const body = (await response.clone().json()) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') code = body.error;
    if (typeof body.message === 'string') message = body.message;
  } catch {
    // not JSON: keep the status
  }
  return new RotorClientError(code, response.status, message);
}
