import { createPublicKey, KeyObject, type JsonWebKey } from 'node:crypto';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import {
  createDpopProofCheck,
  MemoryDpopReplayStore,
  type DpopNonces,
  type DpopReplayStore,
} from './dpop.js';
import { VerifyError } from './errors.js';
import { createAccessTokenCheck, type RotorClaims } from './token-check.js';

export type { RotorClaims } from './token-check.js';

export interface VerifierOptions {
  /** Rotor's `ROTOR_ISSUER`, exactly. */
  issuer: string;
  /** Rotor's `ROTOR_AUDIENCE`. */
  audience: string;
  /** Usually `${issuer}/.well-known/jwks.json`. */
  jwksUri: string | URL;
  /** Accepted algorithms; default Rotor's only one, EdDSA. */
  algorithms?: string[];
  /** Seconds of clock leeway on `exp` (default 1, as Rotor's own routes). */
  clockTolerance?: number;
  /**
   * Strict mode: ask Rotor's introspection endpoint whether the session is still active, so a
   * revocation takes effect at once instead of when the access token expires.
   */
  strict?: {
    introspectionUrl: string | URL;
    clientId: string;
    clientSecret: string;
    /** How long an answer is reused, per token (default 5 s): the revocation delay you accept. */
    cacheMs?: number;
  };
  /**
   * The shortest time between two JWKS fetches (default 5 s): an unknown `kid` (a key rotated on
   * Rotor) refetches the set, at most this often, so forged kids cannot flood Rotor.
   */
  jwksCooldownMs?: number;
  /**
   * How long a fetched JWKS is used before it is fetched again (default 5 min, as Rotor's
   * `Cache-Control`). A key that has left it (`rotor keys rotate --retire-now`, for a leaked key) is
   * noticed at the next fetch, and the tokens it signed are then refused, cached ones included.
   */
  jwksMaxAgeMs?: number;
  /**
   * How many verified tokens to remember (default 1000; 0 disables). A token seen again is accepted
   * without a signature check until its `exp`; it is keyed by the whole token, signature included.
   */
  cacheSize?: number;
  /**
   * DPoP (RFC 9449): how proofs of DPoP-bound tokens (`cnf.jkt`) are checked. Bound tokens are
   * checked with or without this option (never accepted without their proof); it tunes the check.
   */
  dpop?: VerifierDpopOptions;
  /** For tests: the key set, instead of fetching `jwksUri`. */
  keys?: JWTVerifyGetKey;
  fetch?: typeof fetch;
}

/** The DPoP options of a verifier (RFC 9449 §7). */
export interface VerifierDpopOptions {
  /**
   * Where the `jti` of every accepted proof is kept so none is accepted twice (§11.1). Default a
   * {@link MemoryDpopReplayStore} of this verifier: **one process only**. Several instances of a
   * resource server must share one (e.g. Redis `SET key 1 NX EXAT expiresAt`), or a proof replayed
   * on another instance is accepted there.
   */
  replay?: DpopReplayStore;
  /**
   * Refuse Bearer tokens: only DPoP-bound tokens with their proof are accepted (a missing token is
   * then challenged with `WWW-Authenticate: DPoP`). Default false: unbound tokens are accepted as
   * `Bearer`, bound ones only as `DPoP`.
   */
  required?: boolean;
  /**
   * Server nonces (§9): a proof without an accepted `nonce` is refused with `use_dpop_nonce`, and
   * the adapters send `DPoP-Nonce` with their answers.
   */
  nonces?: DpopNonces;
  /** How old a proof's `iat` may be, in seconds (default 60). */
  maxAgeSeconds?: number;
  /** Accepted proof algorithms; default `DPOP_ALGORITHMS`. Symmetric ones are refused anyway. */
  algorithms?: readonly string[];
}

/** The headers {@link Verifier.verifyRequest} reads: Node's `IncomingHttpHeaders` fits. */
export interface RequestHeaders {
  authorization?: string | undefined;
  cookie?: string | undefined;
  /** The DPoP proof (RFC 9449 §4.1); repeated headers (an array, or joined by a comma) are refused. */
  dpop?: string | string[] | undefined;
}

/** The request a DPoP proof must be made for (RFC 9449 §4.3 steps 8 and 9). */
export interface RequestTarget {
  /** The HTTP method, as received (`GET`): compared with the proof's `htm`. */
  method: string;
  /**
   * The full URL the client addressed, as the client saw it: behind a proxy the public one
   * (`https://api.example.com/notes?page=2`). Compared with the proof's `htu` as origin and path;
   * the query and fragment are ignored.
   */
  url: string | URL;
}

/**
 * A verifier; `Claims` are the app's own claims in its tokens (Rotor's `claims` hook: roles, a
 * tenant), typed as the app declares them: Rotor checked them when it signed, this does not.
 */
export interface Verifier<Claims extends object = object> {
  /**
   * Verifies an access token presented as a Bearer token (RFC 6750); throws {@link VerifyError}.
   * A DPoP-bound token (`cnf`) is refused with `invalid_token` and a DPoP challenge, as are all
   * tokens with `dpop.required`: a bound token is only accepted by {@link verifyRequest}, with its
   * proof.
   */
  verify(token: string): Promise<RotorClaims & Claims>;
  /**
   * Verifies the access token of a request, with its DPoP proof when it has one (RFC 9449 §7.1).
   *
   * - `Authorization: DPoP <token>` and exactly one `DPoP` header: the token must be bound
   *   (`cnf.jkt`; else `invalid_token`), the proof valid for `target` (its `htm` and `htu`, `iat`,
   *   `ath` of this token, `nonce` when nonces are on, a `jti` never seen) and made by the key the
   *   token is bound to; else `invalid_dpop_proof` (or `use_dpop_nonce`). Without `target` the
   *   proof cannot be checked and the request is refused (`invalid_token`, a Bearer challenge).
   * - `Authorization: Bearer <token>`, else the `rotor_access` cookie: as {@link verify}; a bound
   *   token is refused.
   *
   * Errors of a DPoP token or proof have `scheme: 'DPoP'`, so their `wwwAuthenticate` is the DPoP
   * challenge. Throws {@link VerifyError}.
   * @example
   * const claims = await verifier.verifyRequest(request.headers, {
   *   method: request.method,
   *   url: `https://api.example.com${request.url}`,
   * });
   */
  verifyRequest(headers: RequestHeaders, target?: RequestTarget): Promise<RotorClaims & Claims>;
  /**
   * The nonce to send in `DPoP-Nonce` (RFC 9449 §9) when `dpop.nonces` is set; undefined otherwise.
   */
  dpopNonce(): string | undefined;
}

/**
 * A verifier for Rotor's access tokens in your own services: signature against the JWKS (fetched
 * once, cached, refetched on an unknown `kid` at most every 5 s), algorithm, `typ: at+jwt`, issuer,
 * audience and expiry, all pinned. No call to Rotor per request unless `strict` is set.
 * DPoP-bound tokens (RFC 9449) are accepted only by `verifyRequest` with a target and their proof;
 * the proofs' `jti`s are kept in memory unless `dpop.replay` is given (one instance only).
 * @example
 * const verifier = createVerifier({ issuer, audience: 'rotor', jwksUri: `${issuer}/.well-known/jwks.json` });
 * const { sub, sid } = await verifier.verify(token);
 * @example
 * // The app's claims (Rotor's `claims` hook), typed as declared: mark optional what may be absent.
 * const verifier = createVerifier<{ roles: string[] }>({ issuer, audience, jwksUri });
 * const { roles } = await verifier.verify(token);
 */
export function createVerifier<Claims extends object = object>(
  options: VerifierOptions,
): Verifier<Claims> {
  const remote = options.keys
    ? undefined
    : createRemoteJWKSet(new URL(options.jwksUri), {
        cacheMaxAge: options.jwksMaxAgeMs ?? 5 * 60_000,
        cooldownDuration: options.jwksCooldownMs ?? 5_000,
      });
  const keys = options.keys ?? remote!;
  /** The kids of the JWKS as last seen: one that disappears was retired at once. */
  let knownKids: Set<string> | undefined;
  function noticeKeySet(): void {
    const kids = new Set((remote?.jwks()?.keys ?? []).flatMap((key) => key.kid ?? []));
    if (knownKids && [...knownKids].some((kid) => !kids.has(kid))) check.forget();
    knownKids = kids;
  }
  const check = createAccessTokenCheck({
    issuer: options.issuer,
    audience: options.audience,
    ...(options.algorithms && { algorithms: options.algorithms }),
    clockTolerance: options.clockTolerance ?? 1,
    cacheSize: options.cacheSize ?? 1000,
    // jose's key set fetches, caches and refetches on an unknown kid (with the cooldown); it hands
    // back the same key object per kid, so the fast verifier built for it is reused.
    resolveKey: async (header) => {
      // A stale set is fetched again by this very call: look at what came back.
      const refetches = remote !== undefined && !remote.fresh;
      const key = await keys(header, { payload: '', signature: '' });
      if (refetches) noticeKeySet();
      return publicKeyOf(key);
    },
  });
  const introspect = options.strict
    ? createIntrospection(options.strict, options.fetch ?? fetch)
    : undefined;

  const dpop = options.dpop ?? {};
  const required = dpop.required === true;
  // Without options too: a bound token under the DPoP scheme is checked, never waved through.
  const checkProof = createDpopProofCheck({
    replay: dpop.replay ?? new MemoryDpopReplayStore(),
    ...(dpop.nonces && { nonces: dpop.nonces }),
    ...(dpop.maxAgeSeconds !== undefined && { maxAgeSeconds: dpop.maxAgeSeconds }),
    ...(dpop.algorithms && { algorithms: dpop.algorithms }),
  });

  /** The token's signature and claims, without the scheme's rules. */
  async function checkToken(token: string, scheme: 'Bearer' | 'DPoP'): Promise<RotorClaims> {
    if (!token) {
      throw new VerifyError('missing_token', 'This request needs an access token.', { scheme });
    }
    // Tokens answered from the cache never reach the key set: keep it fetched every max-age, in
    // the background, so a retired key is noticed even then.
    if (remote && !remote.fresh && !remote.reloading) {
      remote.reload().then(noticeKeySet, () => {});
    }
    return check(token);
  }

  /** RFC 6750: a token presented as Bearer (or in the cookie) must not be bound (RFC 9449 §7.1). */
  async function verify(token: string): Promise<RotorClaims & Claims> {
    const claims = await checkToken(token, required ? 'DPoP' : 'Bearer');
    if (claims.cnf !== undefined) {
      throw new VerifyError(
        'invalid_token',
        'This access token is bound to a key: send it as "Authorization: DPoP" with a proof.',
        { scheme: 'DPoP' },
      );
    }
    if (required) {
      throw new VerifyError(
        'invalid_token',
        'This service accepts DPoP-bound tokens only: sign in with a DPoP proof.',
        { scheme: 'DPoP' },
      );
    }
    await checkSession(token);
    // The app's claims are as the app declared them: Rotor's hook checked them when it signed.
    return claims as RotorClaims & Claims;
  }

  /** RFC 9449 §7.1: a bound token, with one proof by its key for this request and this token. */
  async function verifyDpop(
    token: string,
    proofHeader: RequestHeaders['dpop'],
    target: RequestTarget,
  ): Promise<RotorClaims & Claims> {
    const claims = await checkToken(token, 'DPoP');
    const jkt = jktOf(claims);
    if (proofHeader === undefined) {
      throw new VerifyError('invalid_dpop_proof', 'A DPoP-bound token needs a DPoP proof header.');
    }
    // §4.3 step 1: exactly one. Node joins repeated unknown headers with a comma, which no compact
    // JWS contains.
    if (typeof proofHeader !== 'string' || proofHeader.includes(',')) {
      throw new VerifyError('invalid_dpop_proof', 'Send exactly one DPoP header.');
    }
    const proof = await checkProof(proofHeader.trim(), {
      method: target.method,
      urls: [String(target.url)],
      accessToken: token,
    });
    if (proof.jkt !== jkt) {
      throw new VerifyError(
        'invalid_dpop_proof',
        'The DPoP proof is not made by the key this token is bound to.',
      );
    }
    await checkSession(token);
    return claims as RotorClaims & Claims;
  }

  /** Strict mode: the session must still be active, whatever the cache says. */
  async function checkSession(token: string): Promise<void> {
    if (introspect && !(await introspect(token))) {
      throw new VerifyError('session_revoked', 'This session was signed out or revoked.');
    }
  }

  return {
    verify,
    async verifyRequest(headers, target) {
      const dpopToken = dpopTokenOf(headers.authorization);
      if (dpopToken === undefined) return verify(tokenOf(headers) ?? '');
      if (target === undefined) {
        // Called the Bearer-only way (no method and URL): a proof cannot be checked.
        throw new VerifyError(
          'invalid_token',
          'This service accepts Bearer tokens only; it cannot check DPoP proofs.',
        );
      }
      return verifyDpop(dpopToken, headers.dpop, target);
    },
    dpopNonce: () => dpop.nonces?.current(),
  };
}

/**
 * The token of `Authorization: DPoP <token>` (RFC 9449 §7.1); undefined for another scheme.
 * @throws VerifyError `invalid_token` for `DPoP` with no token after it.
 */
function dpopTokenOf(authorization: string | undefined): string | undefined {
  const match = /^DPoP(?:\s+(\S*))?\s*$/i.exec(authorization ?? '');
  if (!match) return undefined;
  if (!match[1]) {
    throw new VerifyError('invalid_token', 'The Authorization header has no token.', {
      scheme: 'DPoP',
    });
  }
  return match[1];
}

/** The `cnf.jkt` a token presented with the DPoP scheme must carry (RFC 9449 §6.1). */
function jktOf(claims: RotorClaims): string {
  const jkt = (claims.cnf as { jkt?: unknown } | undefined)?.jkt;
  if (typeof jkt !== 'string' || jkt === '') {
    throw new VerifyError(
      'invalid_token',
      'This access token is not bound to a key; send it as Bearer.',
      { scheme: 'DPoP' },
    );
  }
  return jkt;
}

/** `Authorization: Bearer <token>`, else the `rotor_access` cookie; undefined when neither. */
export function tokenOf(headers: {
  authorization?: string | undefined;
  cookie?: string | undefined;
}): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
  if (match) return match[1];
  for (const part of (headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === 'rotor_access' && value.length) return value.join('=');
  }
  return undefined;
}

/** RFC 7662 introspection with HTTP Basic client authentication and a short per-token cache. */
function createIntrospection(
  strict: NonNullable<VerifierOptions['strict']>,
  doFetch: typeof fetch,
) {
  const cacheMs = strict.cacheMs ?? 5_000;
  const cache = new Map<string, { active: boolean; until: number }>();
  const authorization = `Basic ${btoa(`${encodeURIComponent(strict.clientId)}:${encodeURIComponent(strict.clientSecret)}`)}`;
  return async (token: string): Promise<boolean> => {
    const now = Date.now();
    const hit = cache.get(token);
    if (hit && hit.until > now) return hit.active;
    const response = await doFetch(strict.introspectionUrl, {
      method: 'POST',
      headers: {
        authorization,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    });
    if (!response.ok) throw new Error(`introspection failed: HTTP ${response.status}`);
    const { active } = (await response.json()) as { active?: unknown };
    if (cache.size > 10_000) cache.clear();
    cache.set(token, { active: active === true, until: now + cacheMs });
    return active === true;
  };
}

/** A key set's answer as a public key; a shared secret (`Uint8Array`) is never one of Rotor's. */
function publicKeyOf(key: Awaited<ReturnType<JWTVerifyGetKey>>): CryptoKey | KeyObject {
  if (key instanceof KeyObject || key instanceof CryptoKey) return key;
  if (key instanceof Uint8Array) throw new Error('A shared secret is not a public key.');
  return createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
}
