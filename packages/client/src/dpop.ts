import type { DpopKeyStore } from './types.js';

// DPoP (RFC 9449; issue 18): the client's key pair and the proofs it signs, with WebCrypto only
// (browsers and Node 20 alike), so the SDK keeps no runtime dependency.

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const encoder = new TextEncoder();

/** base64url without padding, of bytes or of a string's UTF-8. */
function base64url(data: ArrayBuffer | string): string {
  let text = '';
  for (const byte of typeof data === 'string' ? encoder.encode(data) : new Uint8Array(data))
    text += String.fromCharCode(byte);
  return btoa(text).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

/**
 * A new ES256 (ECDSA P-256) key pair. Its private key is non-extractable unless asked: a script
 * can sign with it while the page is open, but never read it out. The public key always is.
 */
export function generateDpopKey(extractable = false): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(P256, extractable, ['sign', 'verify']);
}

/** Keeps the key pair of this process in memory only: a new key (and sign-in) after a restart. */
export function memoryDpopKeys(): DpopKeyStore {
  return { load: () => generateDpopKey() };
}

/**
 * Keeps the key pair in this origin's IndexedDB under `name` (one key per Rotor server), as
 * CryptoKey objects: the structured clone keeps the private key non-extractable, a reload finds
 * the same key, and every tab shares it. The first tab's key wins: a read and a write in one
 * transaction, so two tabs starting at once cannot keep two keys.
 */
export function indexedDbDpopKeys(name: string): DpopKeyStore {
  return {
    async load() {
      const fresh = await generateDpopKey();
      const open = indexedDB.open('rotor-dpop', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('keys');
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      try {
        const transaction = db.transaction('keys', 'readwrite');
        const keys = transaction.objectStore('keys');
        const found = keys.get(name);
        found.onsuccess = () => {
          if (!found.result) keys.put({ ...fresh }, name);
        };
        return await new Promise<CryptoKeyPair>((resolve, reject) => {
          transaction.oncomplete = () =>
            resolve((found.result as CryptoKeyPair | undefined) ?? fresh);
          transaction.onerror = transaction.onabort = () => reject(transaction.error);
        });
      } finally {
        db.close();
      }
    },
  };
}

/** What {@link DpopSigner.answered} reads of an answer: a fetch `Response`, an axios response. */
export interface DpopAnswer {
  status: number;
  headers: { get(name: string): unknown };
}

/** Signs a client's DPoP proofs, and remembers the servers' nonces (one per origin). */
export interface DpopSigner {
  /**
   * A fresh proof for `method` and `url` (without its query and fragment): a new `jti`, `iat` now,
   * the origin's latest nonce, and `ath` when an access token goes with it.
   */
  proof(method: string, url: string, accessToken?: string | null): Promise<string>;
  /**
   * Remembers the `DPoP-Nonce` of an answer to a request for `url` (`code`: the answer's error
   * code, if any). True when the answer is a `use_dpop_nonce` refusal carrying a nonce: the
   * request is worth sending once more.
   */
  answered(url: string, answer: DpopAnswer, code?: unknown): boolean;
}

/** A signer with the key of `keys`, loaded once (a fresh in-memory key if the store fails). */
export function createDpopSigner(keys: DpopKeyStore): DpopSigner {
  const nonces = new Map<string, string>();
  let key: Promise<[CryptoKey, string]> | undefined;
  const loadKey = async (): Promise<[CryptoKey, string]> => {
    // A store that fails (IndexedDB unavailable in a private window) still lets the user sign in;
    // the session then ends with the page, as its key does.
    const pair = await keys.load().catch(() => generateDpopKey());
    const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
    const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } };
    return [pair.privateKey, base64url(JSON.stringify(header))];
  };
  const target = (url: string) => new URL(url, globalThis.location?.href);
  return {
    async proof(method, url, accessToken) {
      const [privateKey, header] = await (key ??= loadKey());
      const htu = target(url);
      const nonce = nonces.get(htu.origin);
      htu.search = htu.hash = '';
      const claims = {
        jti: crypto.randomUUID(),
        htm: method.toUpperCase(),
        htu: htu.href,
        iat: Math.floor(Date.now() / 1000),
        ...(accessToken && {
          ath: base64url(await crypto.subtle.digest('SHA-256', encoder.encode(accessToken))),
        }),
        ...(nonce && { nonce }),
      };
      const input = `${header}.${base64url(JSON.stringify(claims))}`;
      const signature = await crypto.subtle.sign(
        { name: 'ECDSA', hash: 'SHA-256' },
        privateKey,
        encoder.encode(input),
      );
      return `${input}.${base64url(signature)}`;
    },
    answered(url, { status, headers }, code) {
      const nonce = headers.get('dpop-nonce');
      if (typeof nonce !== 'string' || !nonce) return false;
      nonces.set(target(url).origin, nonce);
      // RFC 9449 §9 (resource servers) says it in WWW-Authenticate; §8 and Rotor in the body.
      return (
        (status === 401 || status === 400) &&
        (code === 'use_dpop_nonce' ||
          /use_dpop_nonce/.test(String(headers.get('www-authenticate'))))
      );
    },
  };
}
