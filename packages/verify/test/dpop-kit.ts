import { randomUUID } from 'node:crypto';
import { accessTokenHash } from '@rotor/verify';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

/**
 * A client's DPoP key and proofs made with it by `jose`, by hand (RFC 9449 §4.2), as Rotor's own
 * DPoP tests make them (packages/server/test/dpop-kit.ts).
 */
export interface DpopTestKey {
  /** The key's JWK SHA-256 thumbprint: the `cnf.jkt` a bound token carries. */
  jkt: string;
  /**
   * A proof for `method` and `url`; `claims` are merged over the honest ones (a value of
   * `undefined` drops that claim) to make a hostile one.
   */
  proof(
    method: string,
    url: string,
    options?: { accessToken?: string; nonce?: string; claims?: Record<string, unknown> },
  ): Promise<string>;
}

/** A new ES256 key pair of a client. */
export async function dpopKey(): Promise<DpopTestKey> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk: JWK = await exportJWK(publicKey);
  return {
    jkt: await calculateJwkThumbprint(publicJwk, 'sha256'),
    async proof(method, url, options = {}) {
      const claims: Record<string, unknown> = {
        htm: method,
        htu: url,
        iat: Math.floor(Date.now() / 1000),
        jti: randomUUID(),
        ...(options.accessToken !== undefined && { ath: accessTokenHash(options.accessToken) }),
        ...(options.nonce !== undefined && { nonce: options.nonce }),
        ...options.claims,
      };
      for (const [name, value] of Object.entries(claims)) {
        if (value === undefined) delete claims[name];
      }
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk })
        .sign(privateKey);
    },
  };
}
