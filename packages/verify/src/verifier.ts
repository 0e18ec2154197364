import { createPublicKey, KeyObject, type JsonWebKey } from 'node:crypto';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
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
  /** For tests: the key set, instead of fetching `jwksUri`. */
  keys?: JWTVerifyGetKey;
  fetch?: typeof fetch;
}

/**
 * A verifier; `Claims` are the app's own claims in its tokens (Rotor's `claims` hook: roles, a
 * tenant), typed as the app declares them: Rotor checked them when it signed, this does not.
 */
export interface Verifier<Claims extends object = object> {
  /** Verifies an access token; throws {@link VerifyError}. */
  verify(token: string): Promise<RotorClaims & Claims>;
  /** Finds the token of a request (`Authorization: Bearer`, else the `rotor_access` cookie) and verifies it. */
  verifyRequest(headers: {
    authorization?: string | undefined;
    cookie?: string | undefined;
  }): Promise<RotorClaims & Claims>;
}

/**
 * A verifier for Rotor's access tokens in your own services: signature against the JWKS (fetched
 * once, cached, refetched on an unknown `kid` at most every 5 s), algorithm, `typ: at+jwt`, issuer,
 * audience and expiry, all pinned. No call to Rotor per request unless `strict` is set.
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

  async function verify(token: string): Promise<RotorClaims & Claims> {
    if (!token) throw new VerifyError('missing_token', 'This request needs an access token.');
    // Tokens answered from the cache never reach the key set: keep it fetched every max-age, in
    // the background, so a retired key is noticed even then.
    if (remote && !remote.fresh && !remote.reloading) {
      remote.reload().then(noticeKeySet, () => {});
    }
    const claims = await check(token);
    await checkSession(token);
    // The app's claims are as the app declared them: Rotor's hook checked them when it signed.
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
    verifyRequest(headers) {
      return verify(tokenOf(headers) ?? '');
    },
  };
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
