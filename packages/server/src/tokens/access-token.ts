import { randomUUID } from 'node:crypto';
import { createAccessTokenCheck, VerifyError, type AccessTokenCheck } from '@rotor/verify';
import { SignJWT } from 'jose';
import { RotorError } from '../errors.js';
import { SIGNING_ALG, type KeyRing } from './signing-keys.js';

/** The `typ` header of Rotor's access tokens (RFC 9068). */
export const ACCESS_TOKEN_TYPE = 'at+jwt';
/** API.md: Rotor's own checks of `exp` allow at most 1 s of clock leeway. */
const CLOCK_LEEWAY_SECONDS = 1;
/**
 * Verified access tokens remembered (about 1 KiB each): a client's token is checked once, not on
 * each of its requests. The session is still read on every request (see `authenticate`).
 */
const VERIFIED_CACHE_SIZE = 10_000;

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
  /** Whether the user's address was proven when the token was signed (issue 17). */
  email_verified?: boolean;
  /**
   * RFC 9449 §6.1 / RFC 7800: the token is bound to the key of this JWK SHA-256 thumbprint; every
   * request with it needs a DPoP proof by that key (issue 18).
   */
  cnf?: { jkt: string };
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
  readonly #check: AccessTokenCheck;

  constructor(private readonly options: AccessTokenOptions) {
    // The check `@rotor/verify` uses too: one implementation of the rules, and its fast path.
    this.#check = createAccessTokenCheck({
      issuer: options.issuer,
      audience: options.audience,
      algorithms: [SIGNING_ALG],
      clockTolerance: CLOCK_LEEWAY_SECONDS,
      now: () => options.now(),
      cacheSize: VERIFIED_CACHE_SIZE,
      resolveKey: async ({ kid }) =>
        kid === undefined ? undefined : (await options.keys.findOrReload(kid))?.publicKey,
    });
    // A key withdrawn at once (a leak): tokens it signed must not pass from the cache either.
    options.keys.onWithdrawn(() => this.#check.forget());
  }

  /**
   * Signs an access token for `sub`/`sid` that expires at `exp` (seconds since the epoch), with
   * the app's `claims` beside Rotor's (checked by engine/custom-claims.ts: none of Rotor's).
   */
  async sign(input: {
    sub: string;
    sid: string;
    exp: number;
    /** The `email_verified` claim (OpenID Connect Core §5.1's name): the address is proven. */
    emailVerified?: boolean;
    /** The JWK thumbprint of a bound session's key: the `cnf.jkt` claim (RFC 9449 §6.1). */
    dpopJkt?: string | null | undefined;
    claims?: Record<string, unknown> | undefined;
  }): Promise<string> {
    await this.options.keys.refreshIfStale();
    const key = this.options.keys.current;
    const own: Record<string, unknown> =
      input.emailVerified === undefined
        ? { sid: input.sid }
        : { sid: input.sid, email_verified: input.emailVerified };
    if (input.dpopJkt) own.cnf = { jkt: input.dpopJkt };
    return new SignJWT({ ...input.claims, ...own })
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
   * The claims of a token that {@link verify} accepted before and that has not expired, from the
   * verified-token cache, synchronously; undefined when the full check is needed (not cached, or
   * the keys must be re-read first: a key withdrawn elsewhere empties the cache on that re-read).
   */
  cached(token: string): AccessTokenClaims | undefined {
    const syncing = this.options.keys.sync();
    if (syncing !== undefined) {
      // `verify` awaits the same read and answers its failure (503 while the database is down);
      // this promise is only dropped here, so its rejection must not go unhandled.
      syncing.catch(() => {});
      return undefined;
    }
    return this.#check.cached(token) as AccessTokenClaims | undefined;
  }

  /**
   * Verifies an access token: signature by one of our keys (unknown `kid` refused), algorithm,
   * `typ`, `iss`, `aud`, `exp`/`nbf`/`iat` with 1 s leeway and the presence of every claim; a token
   * verified before is answered from a bounded cache until its `exp`.
   * Throws `RotorError` `token_expired` or `invalid_token`.
   */
  async verify(token: string): Promise<AccessTokenClaims> {
    const syncing = this.options.keys.sync();
    if (syncing) await syncing;
    try {
      return (await this.#check(token)) as AccessTokenClaims;
    } catch (cause) {
      if (cause instanceof VerifyError) {
        throw new RotorError(cause.code, cause.message, { cause });
      }
      throw cause;
    }
  }
}
