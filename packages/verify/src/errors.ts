/** The codes a verifier answers with, the same as Rotor's own (API.md). */
export type VerifyErrorCode =
  'missing_token' | 'invalid_token' | 'token_expired' | 'session_revoked';

/** A request without a usable access token; every adapter answers it with `401`. */
export class VerifyError extends Error {
  readonly code: VerifyErrorCode;
  readonly status = 401;

  constructor(code: VerifyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VerifyError';
    this.code = code;
  }

  /** `WWW-Authenticate` per RFC 6750 §3.1: plain for a missing token, `invalid_token` otherwise. */
  get wwwAuthenticate(): string {
    return this.code === 'missing_token' ? 'Bearer' : 'Bearer error="invalid_token"';
  }

  /** The JSON error shape of API.md. */
  toJSON(): { error: VerifyErrorCode; message: string } {
    return { error: this.code, message: this.message };
  }
}
