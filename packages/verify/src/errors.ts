/** The codes a verifier answers with, the same as Rotor's own (API.md). */
export type VerifyErrorCode =
  | 'missing_token'
  | 'invalid_token'
  | 'token_expired'
  | 'session_revoked'
  /** RFC 9449 §7.1: the DPoP proof is missing where the token is bound, or is not valid. */
  | 'invalid_dpop_proof'
  /** RFC 9449 §8/§9: send the proof again with the nonce of the `DPoP-Nonce` header. */
  | 'use_dpop_nonce';

/** The authentication scheme a challenge names: RFC 6750's `Bearer` or RFC 9449's `DPoP`. */
export type AuthScheme = 'Bearer' | 'DPoP';

/** The algorithms a DPoP proof may be signed with (RFC 9449 §5.1 `algs`): asymmetric only. */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'PS256', 'RS256'] as const;

/** A request without a usable access token; every adapter answers it with `401`. */
export class VerifyError extends Error {
  readonly code: VerifyErrorCode;
  readonly status = 401;
  /** The scheme of the challenge: `DPoP` for a DPoP-bound token or a proof's fault. */
  readonly scheme: AuthScheme;

  constructor(
    code: VerifyErrorCode,
    message: string,
    options?: { cause?: unknown; scheme?: AuthScheme },
  ) {
    super(message, options);
    this.name = 'VerifyError';
    this.code = code;
    this.scheme =
      options?.scheme ??
      (code === 'invalid_dpop_proof' || code === 'use_dpop_nonce' ? 'DPoP' : 'Bearer');
  }

  /**
   * `WWW-Authenticate`: RFC 6750 §3.1 for Bearer (plain for a missing token, `invalid_token`
   * otherwise); RFC 9449 §7.1 for DPoP, with the accepted algorithms.
   */
  get wwwAuthenticate(): string {
    if (this.scheme === 'DPoP') {
      const error =
        this.code === 'missing_token'
          ? ''
          : `error="${this.code === 'token_expired' || this.code === 'session_revoked' ? 'invalid_token' : this.code}", `;
      return `DPoP ${error}algs="${DPOP_ALGORITHMS.join(' ')}"`;
    }
    return this.code === 'missing_token' ? 'Bearer' : 'Bearer error="invalid_token"';
  }

  /** The JSON error shape of API.md. */
  toJSON(): { error: VerifyErrorCode; message: string } {
    return { error: this.code, message: this.message };
  }
}
