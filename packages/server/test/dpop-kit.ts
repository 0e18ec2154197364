import { randomUUID } from 'node:crypto';
import { accessTokenHash } from '@rotor/verify';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';

/** A DPoP key of a client, and proofs made with it by `jose`, by hand (RFC 9449 §4.2). */
export interface DpopTestKey {
  alg: string;
  publicJwk: JWK;
  privateJwk: JWK;
  privateKey: CryptoKey;
  /** The key's JWK SHA-256 thumbprint: the `cnf.jkt` a bound token carries. */
  jkt: string;
  /**
   * A proof for `method` and `url`; each part can be overridden to make a hostile one: `header`
   * and `claims` are merged over the honest ones (a `claims` value of `undefined` drops it).
   */
  proof(
    method: string,
    url: string,
    options?: {
      accessToken?: string;
      jti?: string;
      /** Seconds since the epoch; default `now()`. */
      iat?: number;
      nonce?: string;
      header?: Record<string, unknown>;
      claims?: Record<string, unknown>;
      /** Sign with this key instead (a proof whose signature is not by its `jwk`). */
      signWith?: CryptoKey;
    },
  ): Promise<string>;
}

/** A new key pair for `alg` (default ES256); `now` gives proofs' `iat` in seconds. */
export async function dpopKey(
  alg = 'ES256',
  now: () => number = () => Math.floor(Date.now() / 1000),
): Promise<DpopTestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  const jkt = await calculateJwkThumbprint(publicJwk, 'sha256');
  return {
    alg,
    publicJwk,
    privateJwk,
    privateKey,
    jkt,
    async proof(method, url, options = {}) {
      const claims: Record<string, unknown> = {
        htm: method,
        htu: url,
        iat: options.iat ?? now(),
        jti: options.jti ?? randomUUID(),
        ...(options.accessToken !== undefined && { ath: accessTokenHash(options.accessToken) }),
        ...(options.nonce !== undefined && { nonce: options.nonce }),
        ...options.claims,
      };
      for (const [name, value] of Object.entries(claims)) {
        if (value === undefined) delete claims[name];
      }
      const header = { alg, typ: 'dpop+jwt', jwk: publicJwk, ...options.header };
      return new SignJWT(claims)
        .setProtectedHeader(header as { alg: string })
        .sign(options.signWith ?? privateKey);
    },
  };
}

/** The claims of a JWT, unverified (to read `cnf` of a token the test was handed). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
    string,
    unknown
  >;
}
