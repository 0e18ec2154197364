import { hkdfSync, randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';

const HMAC_SECRET_NAME = 'refresh_successor_hmac_key';

/**
 * The HMAC key that derives refresh-token successors. From `ROTOR_SECRET` when set (HKDF, so the
 * configured text is never used as a key directly); otherwise 256 random bits generated on first
 * start and kept in the database, so every instance on that database derives the same successors.
 */
export async function loadHmacKey(
  store: Store,
  clock: Clock,
  secret: string | undefined,
): Promise<Uint8Array> {
  if (secret !== undefined) {
    return new Uint8Array(hkdfSync('sha256', secret, 'rotor', HMAC_SECRET_NAME, 32));
  }
  let stored = await store.findSecret(HMAC_SECRET_NAME);
  if (stored === undefined) {
    await store.insertSecretIfAbsent(
      HMAC_SECRET_NAME,
      randomBytes(32).toString('base64url'),
      clock.now(),
    );
    // Read back: when two instances start at once, the first write wins for both.
    stored = await store.findSecret(HMAC_SECRET_NAME);
  }
  if (stored === undefined) throw new Error('the refresh HMAC key could not be stored');
  return new Uint8Array(Buffer.from(stored, 'base64url'));
}

/**
 * The key that seals signing keys at rest: derived from `ROTOR_SECRET` (HKDF, its own label), or
 * none when no secret is configured (the keys are then stored as plain JWKs, as the database is).
 */
export function signingKeySeal(secret: string | undefined): Uint8Array | undefined {
  return secret === undefined
    ? undefined
    : new Uint8Array(hkdfSync('sha256', secret, 'rotor', 'signing_key_seal', 32));
}
