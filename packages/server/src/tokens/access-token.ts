import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { RotorError } from '../errors.js';
import { SIGNING_ALG, type KeyRing } from './signing-keys.js';

/** The `typ` header of Rotor's access tokens (RFC 9068). */
export const ACCESS_TOKEN_TYPE = 'at+jwt';
/** API.md: Rotor's own checks of `exp` allow at most 1 s of clock leeway. */
const CLOCK_LEEWAY_SECONDS = 1;
/** Longer than any token Rotor issues; refused before any parsing. */
const MAX_TOKEN_LENGTH = 8192;

/** The claims of a verified access token. */
export interface AccessTokenClaims {
  iss: string;
  aud: string;
  /** The user id. */
  sub: string;
  /** The session id. */
  sid: string;
  jti: string;
  iat: number;
  exp: number;
}

export interface AccessTokenOptions {
  keys: KeyRing;
  issuer: string;
  audience: string;
  /** Seconds since the epoch, from the injected clock. */
  now: () => number;
}

/** Signs and verifies access tokens: EdDSA, `typ: at+jwt`, pinned issuer and audience. */
export class AccessTokens {
  constructor(private readonly options: AccessTokenOptions) {}

  /** Signs an access token for `sub`/`sid` that expires at `exp` (seconds since the epoch). */
  async sign(input: { sub: string; sid: string; exp: number }): Promise<string> {
    await this.options.keys.refreshIfStale();
    const key = this.options.keys.current;
    return new SignJWT({ sid: input.sid })
      .setProtectedHeader({ alg: SIGNING_ALG, typ: ACCESS_TOKEN_TYPE, kid: key.kid })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(input.sub)
      .setJti(randomUUID())
      .setIssuedAt(this.options.now())
      .setExpirationTime(input.exp)
      .sign(key.privateKey);
  }

  /**
   * Verifies an access token: signature by one of our keys (unknown `kid` refused), algorithm,
   * `typ`, `iss`, `aud`, `exp` with 1 s leeway and the presence of every claim.
   * Throws `RotorError` `token_expired` or `invalid_token`.
   */
  async verify(token: string): Promise<AccessTokenClaims> {
    if (token.length > MAX_TOKEN_LENGTH) throw invalid('The access token is too long.');
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch (cause) {
      throw invalid('The access token is malformed.', cause);
    }
    const key =
      typeof kid === 'string' && kid.length <= 128
        ? await this.options.keys.findOrReload(kid)
        : undefined;
    if (!key) throw invalid('The access token was not signed by a key of this server.');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.publicKey, {
        algorithms: [SIGNING_ALG],
        issuer: this.options.issuer,
        audience: this.options.audience,
        typ: ACCESS_TOKEN_TYPE,
        clockTolerance: CLOCK_LEEWAY_SECONDS,
        currentDate: new Date(this.options.now() * 1000),
        requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
      }));
    } catch (cause) {
      if (cause instanceof errors.JWTExpired) {
        throw new RotorError('token_expired', 'The access token has expired; refresh it.', {
          cause,
        });
      }
      throw invalid('The access token is invalid.', cause);
    }
    const { sid } = payload;
    if (typeof sid !== 'string' || !Number.isFinite(payload.exp) || !Number.isFinite(payload.iat)) {
      throw invalid('The access token is missing claims.');
    }
    // jose checks `iat` only against a maximum age; a token issued in the future is forged or skewed.
    if (payload.iat! > this.options.now() + CLOCK_LEEWAY_SECONDS) {
      throw invalid('The access token was issued in the future.');
    }
    return payload as unknown as AccessTokenClaims;
  }
}

function invalid(message: string, cause?: unknown): RotorError {
  return new RotorError('invalid_token', message, { cause });
}
