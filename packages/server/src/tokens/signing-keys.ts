import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from 'jose';
import type { Clock } from '../clock.js';
import type { SigningKeyRow, Store } from '../store/store.js';

const INITIAL_KEY_SECRET = 'signing_key:initial';
/** How often an unknown kid may trigger a re-read of the keys. */
const RELOAD_INTERVAL_MS = 5_000;

/** The one signature algorithm Rotor issues and accepts (API.md: default EdDSA/Ed25519). */
export const SIGNING_ALG = 'EdDSA';

/** A signing key ready to use: the private half signs, the public half verifies and is published. */
export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  createdAt: number;
}

/**
 * The signing keys of this deployment, kept in the database so that every instance signs and
 * verifies with the same keys and they survive restarts. The first start generates one.
 */
export class KeyRing {
  #keys: SigningKey[] = [];

  #loadedAt = 0;

  private constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Loads the keys, generating the first one when the database has none. */
  static async load(store: Store, clock: Clock): Promise<KeyRing> {
    const ring = new KeyRing(store, clock);
    await ring.reload();
    if (ring.#keys.length === 0) {
      // Instances starting at once on an empty database must agree on one key: the first proposal
      // written under a fixed name wins (a primary-key conflict), and everyone installs that one.
      const proposal = JSON.stringify(await generateSigningKey(clock.now()));
      await store.insertSecretIfAbsent(INITIAL_KEY_SECRET, proposal, clock.now());
      const agreed = JSON.parse(
        (await store.findSecret(INITIAL_KEY_SECRET)) ?? proposal,
      ) as SigningKeyRow;
      await store.insertSigningKey(agreed);
      await ring.reload();
    }
    return ring;
  }

  /**
   * The verification key for `kid`. An unknown kid re-reads the database first (at most once every
   * few seconds), so a key another instance created is found without a restart.
   */
  async findOrReload(kid: string): Promise<SigningKey | undefined> {
    const key = this.find(kid);
    if (key || this.clock.now() - this.#loadedAt < RELOAD_INTERVAL_MS) return key;
    await this.reload();
    return this.find(kid);
  }

  /** Re-reads the keys from the database. */
  async reload(): Promise<void> {
    this.#loadedAt = this.clock.now();
    const rows = await this.store.listSigningKeys();
    this.#keys = await Promise.all(rows.filter((row) => row.retired_at === null).map(toSigningKey));
  }

  /** The key new tokens are signed with: the newest one (ties broken by kid, so instances agree). */
  get current(): SigningKey {
    const key = this.#keys.reduce<SigningKey | undefined>(
      (best, k) =>
        !best ||
        k.createdAt > best.createdAt ||
        (k.createdAt === best.createdAt && k.kid > best.kid)
          ? k
          : best,
      undefined,
    );
    if (!key) throw new Error('no signing key loaded');
    return key;
  }

  /** The verification key for `kid`, if it is one of ours. */
  find(kid: string): SigningKey | undefined {
    return this.#keys.find((key) => key.kid === kid);
  }

  /** The public keys, as published at `/.well-known/jwks.json`. */
  jwks(): { keys: JWK[] } {
    return { keys: this.#keys.map((key) => key.publicJwk) };
  }
}

async function generateSigningKey(now: number): Promise<SigningKeyRow> {
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, {
    crv: 'Ed25519',
    extractable: true,
  });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    kid,
    alg: SIGNING_ALG,
    public_jwk: JSON.stringify({ ...publicJwk, kid, alg: SIGNING_ALG, use: 'sig' }),
    private_jwk: JSON.stringify(privateJwk),
    created_at: now,
    retired_at: null,
  };
}

async function toSigningKey(row: SigningKeyRow): Promise<SigningKey> {
  const publicJwk = JSON.parse(row.public_jwk) as JWK;
  return {
    kid: row.kid,
    alg: row.alg,
    privateKey: (await importJWK(JSON.parse(row.private_jwk) as JWK, row.alg)) as CryptoKey,
    publicKey: (await importJWK(publicJwk, row.alg)) as CryptoKey,
    publicJwk,
    createdAt: row.created_at,
  };
}
