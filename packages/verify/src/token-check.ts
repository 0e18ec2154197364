import { KeyObject } from 'node:crypto';
import { createVerifier as createFastVerifier, TokenError } from 'fast-jwt';
import { VerifyError } from './errors.js';

/** The claims of a Rotor access token. */
export interface RotorClaims {
  iss: string;
  aud: string | string[];
  /** The user id. */
  sub: string;
  /** The session (device) id. */
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  /**
   * The key the token is bound to (RFC 9449 §6.1): the JWK SHA-256 thumbprint of the client's
   * DPoP key, present on the tokens of a session signed in with a proof. Such a token is accepted
   * only with `Authorization: DPoP` and a proof by that key.
   */
  cnf?: { jkt: string };
}

/** The parts of a token's protected header a key is chosen by. */
export interface TokenHeader {
  alg: string;
  kid?: string;
  [parameter: string]: unknown;
}

export interface AccessTokenCheckOptions {
  issuer: string;
  audience: string;
  /** Accepted algorithms; default Rotor's only one, EdDSA. */
  algorithms?: string[];
  /** Seconds of clock leeway on `exp`, `nbf` and `iat` (default 1). */
  clockTolerance?: number;
  /**
   * The public key for a header, or undefined when the `kid` is unknown. Called for every token
   * that is not cached: it must be cheap when the key is known (an in-memory lookup).
   */
  resolveKey(header: TokenHeader): Promise<KeyObject | CryptoKey | undefined>;
  /** Seconds since the epoch (default the system clock): injected so expiry is testable. */
  now?: () => number;
  /**
   * How many verified tokens to remember (default 1000; 0 disables). A token seen again is accepted
   * without a signature check until its `exp`; it is keyed by the whole token, signature included.
   */
  cacheSize?: number;
}

const MAX_TOKEN_LENGTH = 8192;
const MAX_KID_LENGTH = 128;
// fast-jwt's allowedIss/allowedAud only judge the claims when present: both must be required too.
const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'sid', 'jti', 'iat', 'exp'];

type FastVerify = (token: string) => Record<string, unknown>;

/**
 * The cache's key for a token: the end of its signature. Hashing a fresh string costs V8 a pass
 * over every character, and a whole token (hundreds of them, a new string on every request) made
 * that hash most of a cache hit's time. The key only finds the entry: a hit still needs the whole
 * token equal to the one verified, so a token that shares the tail is no hit, only a miss.
 */
const CACHE_KEY_LENGTH = 22;

function cacheKeyOf(token: string): string {
  return token.slice(-CACHE_KEY_LENGTH);
}

interface Verified {
  token: string;
  claims: RotorClaims;
}

/** A token check: see {@link createAccessTokenCheck}. */
export interface AccessTokenCheck {
  (token: string): Promise<RotorClaims>;
  /**
   * Forgets every verified token, so each is checked against the keys again: call it when a key
   * was withdrawn (a leaked key retired at once), or cached tokens it signed would still pass.
   */
  forget(): void;
  /**
   * The claims of a token verified before and still unexpired, synchronously; undefined when it is
   * not in the cache (then call the check itself). The same answer the check would give from its
   * cache, without the promise: for a server's per-request fast path.
   */
  cached(token: string): RotorClaims | undefined;
}

/**
 * The access-token check that `@rotor/verify` and Rotor's own routes share: the signature by
 * `fast-jwt` (one `node:crypto` verify with a key imported once, no per-call promise chain), then
 * Rotor's pinned rules: algorithm, `typ: at+jwt`, no unknown `crit`, issuer, audience, every claim
 * present, `exp`/`nbf`/`iat` against the injected clock. A bounded LRU of verified tokens answers a
 * token seen again without the signature check, until its `exp`.
 * Throws {@link VerifyError} `invalid_token` or `token_expired`.
 */
export function createAccessTokenCheck(options: AccessTokenCheckOptions): AccessTokenCheck {
  const algorithms = options.algorithms ?? ['EdDSA'];
  const tolerance = options.clockTolerance ?? 1;
  const now = options.now ?? (() => Date.now() / 1000);
  const cacheSize = options.cacheSize ?? 1000;
  /**
   * Verified tokens by {@link cacheKeyOf}, oldest first (a Map keeps insertion order: an LRU with
   * delete + set).
   */
  const verified = new Map<string, Verified>();
  /** Bumped by `forget`, so a check that was under way then does not cache its answer. */
  let generation = 0;
  /** One fast-jwt verifier per key object: built once, dropped with the key. */
  const verifiers = new WeakMap<object, FastVerify>();

  function verifierFor(key: KeyObject | CryptoKey): FastVerify {
    let verifier = verifiers.get(key);
    if (!verifier) {
      const keyObject = key instanceof KeyObject ? key : KeyObject.from(key);
      verifier = createFastVerifier({
        key: keyObject.export({ type: 'spki', format: 'pem' }).toString(),
        algorithms: algorithms as never,
        allowedIss: options.issuer,
        allowedAud: options.audience,
        checkTyp: 'at+jwt',
        requiredClaims: REQUIRED_CLAIMS,
        // Time is checked below against the injected clock; fast-jwt's clock is fixed at creation.
        ignoreExpiration: true,
        ignoreNotBefore: true,
      }) as FastVerify;
      verifiers.set(key, verifier);
    }
    return verifier;
  }

  /** A cached, unexpired verdict at `current`, refreshed as most recently used. */
  function hitOf(token: string, current: number): RotorClaims | undefined {
    const key = cacheKeyOf(token);
    const hit = verified.get(key);
    // The whole token, signature included: the key alone proves nothing.
    if (hit === undefined || hit.token !== token) return undefined;
    verified.delete(key);
    if (!(hit.claims.exp + tolerance > current)) return undefined;
    verified.set(key, hit);
    return { ...hit.claims };
  }

  async function check(token: string): Promise<RotorClaims> {
    if (token.length > MAX_TOKEN_LENGTH) throw invalid('The access token is too long.');
    const current = now();
    const started = generation;
    const hit = hitOf(token, current);
    if (hit) return hit;
    const header = headerOf(token);
    let key: KeyObject | CryptoKey | undefined;
    try {
      key = await options.resolveKey(header);
    } catch (cause) {
      // A key set that cannot be fetched or has no match: the token cannot be trusted.
      throw invalid('The access token was not signed by a known key.', cause);
    }
    if (!key) throw invalid('The access token was not signed by a known key.');
    let payload: Record<string, unknown>;
    try {
      payload = verifierFor(key)(token);
    } catch (cause) {
      throw invalid(
        cause instanceof TokenError ? cause.message : 'The access token is invalid.',
        cause,
      );
    }
    const claims = checkTimes(payload, current, tolerance);
    if (cacheSize > 0 && started === generation) {
      verified.set(cacheKeyOf(token), { token, claims });
      if (verified.size > cacheSize) verified.delete(verified.keys().next().value!);
    }
    return { ...claims };
  }
  check.forget = () => {
    generation += 1;
    verified.clear();
  };
  // A token too long is never cached, so the lookup needs no length check of its own.
  check.cached = (token: string) => (cacheSize > 0 ? hitOf(token, now()) : undefined);
  return check;
}

/** The header's `alg` and `kid`, refusing anything that is not a compact JWS header. */
function headerOf(token: string): TokenHeader {
  const dot = token.indexOf('.');
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString());
  } catch (cause) {
    throw invalid('The access token is malformed.', cause);
  }
  if (dot <= 0 || typeof header !== 'object' || header === null) {
    throw invalid('The access token is malformed.');
  }
  const { alg, kid } = header as Record<string, unknown>;
  if (typeof alg !== 'string') throw invalid('The access token names no algorithm.');
  if (kid === undefined) return { alg };
  if (typeof kid !== 'string' || kid.length > MAX_KID_LENGTH) {
    throw invalid('The access token was not signed by a known key.');
  }
  return { alg, kid };
}

/** `exp`, `nbf` and `iat` against `now`, and the types of Rotor's own claims. */
function checkTimes(payload: Record<string, unknown>, now: number, tolerance: number): RotorClaims {
  const { exp, iat, nbf, sid, sub } = payload;
  if (
    typeof sid !== 'string' ||
    typeof sub !== 'string' ||
    typeof exp !== 'number' ||
    typeof iat !== 'number' ||
    !Number.isFinite(exp) ||
    !Number.isFinite(iat)
  ) {
    throw invalid('The access token is missing claims.');
  }
  if (exp + tolerance <= now) {
    throw new VerifyError('token_expired', 'The access token has expired; refresh it.');
  }
  if (iat > now + tolerance) throw invalid('The access token was issued in the future.');
  if (nbf !== undefined && (typeof nbf !== 'number' || !(nbf <= now + tolerance))) {
    throw invalid('The access token is not valid yet.');
  }
  return payload as unknown as RotorClaims;
}

function invalid(message: string, cause?: unknown): VerifyError {
  return new VerifyError('invalid_token', message, { cause });
}
