import {
  calculateJwkThumbprint,
  compactDecrypt,
  CompactEncrypt,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from 'jose';
import type { Clock } from '../clock.js';
import { ConfigError } from '../errors.js';
import type { SigningKeyRow, Store } from '../store/store.js';

const INITIAL_KEY_SECRET = 'signing_key:initial';
/**
 * How often an unknown kid may trigger a re-read of the keys: a key rotated on another instance is
 * found within a second, and forged kids cost at most one small read a second.
 */
const RELOAD_INTERVAL_MS = 1_000;
/** How often signing re-reads the keys, to pick up a rotation made on another instance. */
export const SIGNING_RELOAD_MS = 30_000;
/** Seconds a retired key stays published beyond the access-token lifetime. */
const RETIRE_MARGIN_S = 60;

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
  /** When the key leaves the JWKS (set at rotation); null while it is the signing key. */
  retiresAt: number | null;
}

/**
 * The signing keys of this deployment, kept in the database so that every instance signs and
 * verifies with the same keys and they survive restarts. The first start generates one.
 */
export class KeyRing {
  #keys: SigningKey[] = [];
  #loadedAt = 0;
  #reloading: Promise<void> | undefined;
  /** Another process may have changed the keys since the last read (see {@link markStale}). */
  #stale = false;
  readonly #onWithdrawn = new Set<() => void>();

  private constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** Seals private keys at rest (AES-256-GCM, from `ROTOR_SECRET`); none: stored as plain JWK. */
    private readonly seal: Uint8Array | undefined,
  ) {}

  /** Loads the keys, generating the first one when the database has none. */
  static async load(store: Store, clock: Clock, seal?: Uint8Array): Promise<KeyRing> {
    const ring = new KeyRing(store, clock, seal);
    await ring.reload();
    if (ring.#keys.length === 0) {
      // Instances starting at once on an empty database must agree on one key: the first proposal
      // written under a fixed name wins (a primary-key conflict), and everyone installs that one.
      const proposal = JSON.stringify(await generateSigningKey(clock.now(), seal));
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

  /**
   * Re-reads the keys from the database. Keys already loaded are kept as they are (their imported
   * halves, and the verifiers built on them); when a key this ring published has gone, the
   * `onWithdrawn` listeners hear of it.
   */
  async reload(): Promise<void> {
    this.#loadedAt = this.clock.now();
    this.#stale = false;
    const rows = await this.store.listSigningKeys();
    const now = this.clock.now();
    const loaded = new Map(this.#keys.map((key) => [key.kid, key]));
    const before = this.#published().map((key) => key.kid);
    this.#keys = await Promise.all(
      rows
        .filter((row) => row.retired_at === null || row.retired_at > now)
        .map(async (row) => {
          const known = loaded.get(row.kid);
          return known
            ? { ...known, retiresAt: row.retired_at }
            : await toSigningKey(row, this.seal);
        }),
    );
    const after = new Set(this.#published().map((key) => key.kid));
    if (before.some((kid) => !after.has(kid))) this.#onWithdrawn.forEach((listener) => listener());
  }

  /**
   * Another process may have changed the keys (the store saw a commit it cannot attribute, or
   * PostgreSQL notified a change of `signing_keys`): the next {@link sync} re-reads them, at most
   * once a second, so a key retired at once elsewhere stops verifying here within that second.
   */
  markStale(): void {
    this.#stale = true;
  }

  /**
   * Re-reads the keys if {@link markStale} was called and the last read is a second old; else
   * undefined, at no cost (it runs before every token check).
   */
  sync(): Promise<void> | undefined {
    if (!this.#stale || this.clock.now() - this.#loadedAt < RELOAD_INTERVAL_MS) return undefined;
    return (this.#reloading ??= this.reload().finally(() => (this.#reloading = undefined)));
  }

  /** Calls `listener` whenever a reload finds that a published key was withdrawn. */
  onWithdrawn(listener: () => void): void {
    this.#onWithdrawn.add(listener);
  }

  /**
   * Re-reads the keys when the last read is older than {@link SIGNING_RELOAD_MS}, so every instance
   * signs with a key rotated elsewhere within that time. Concurrent callers share one read.
   */
  async refreshIfStale(): Promise<void> {
    if (this.clock.now() - this.#loadedAt < SIGNING_RELOAD_MS) return;
    this.#reloading ??= this.reload().finally(() => (this.#reloading = undefined));
    await this.#reloading;
  }

  /**
   * Rotates the signing key: a new key signs from now on; the others stay in the JWKS until every
   * token they signed has expired (`accessTtl` plus a minute for instances still signing with them
   * until their next reload), then retire. With `retireNow` (a leaked key) they retire at once:
   * every token they signed stops working, on every instance within a second, and their users
   * refresh to get a token signed with the new key.
   */
  async rotate(accessTtl: number, { retireNow = false } = {}): Promise<SigningKey> {
    const now = this.clock.now();
    const row = await generateSigningKey(now, this.seal);
    await this.store.transaction(async (tx) => {
      await tx.insertSigningKey(row);
      await tx.retireSigningKeys(
        row.kid,
        retireNow ? now : now + (accessTtl + RETIRE_MARGIN_S) * 1000,
      );
    });
    await this.reload();
    return this.find(row.kid)!;
  }

  /** Every key still published, oldest first. */
  list(): readonly SigningKey[] {
    return this.#keys;
  }

  /** The key new tokens are signed with: the newest active one (ties broken by kid, so instances agree). */
  get current(): SigningKey {
    const key = this.#keys
      .filter((k) => k.retiresAt === null)
      .reduce<SigningKey | undefined>(
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

  /** The verification key for `kid`, if it is one of ours and not retired. */
  find(kid: string): SigningKey | undefined {
    return this.#published().find((key) => key.kid === kid);
  }

  /** The public keys, as published at `/.well-known/jwks.json`. */
  jwks(): { keys: JWK[] } {
    return { keys: this.#published().map((key) => key.publicJwk) };
  }

  /** The keys not yet retired: the signing key and those whose tokens may still be live. */
  #published(): SigningKey[] {
    const now = this.clock.now();
    return this.#keys.filter((key) => key.retiresAt === null || key.retiresAt > now);
  }
}

async function generateSigningKey(
  now: number,
  seal: Uint8Array | undefined,
): Promise<SigningKeyRow> {
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
    private_jwk: seal
      ? await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(privateJwk)))
          .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
          .encrypt(seal)
      : JSON.stringify(privateJwk),
    created_at: now,
    retired_at: null,
  };
}

async function toSigningKey(row: SigningKeyRow, seal: Uint8Array | undefined): Promise<SigningKey> {
  const publicJwk = JSON.parse(row.public_jwk) as JWK;
  return {
    kid: row.kid,
    alg: row.alg,
    privateKey: (await importJWK(await privateJwkOf(row, seal), row.alg)) as CryptoKey,
    publicKey: (await importJWK(publicJwk, row.alg)) as CryptoKey,
    publicJwk,
    createdAt: row.created_at,
    retiresAt: row.retired_at,
  };
}

/** The private JWK of a row: plain JSON, or a JWE sealed with the key derived from `ROTOR_SECRET`. */
async function privateJwkOf(row: SigningKeyRow, seal: Uint8Array | undefined): Promise<JWK> {
  if (row.private_jwk.startsWith('{')) return JSON.parse(row.private_jwk) as JWK;
  if (!seal) {
    throw new ConfigError(
      'ROTOR_SECRET',
      'the signing keys in the database are sealed: set the ROTOR_SECRET they were sealed with',
    );
  }
  try {
    const { plaintext } = await compactDecrypt(row.private_jwk, seal, {
      contentEncryptionAlgorithms: ['A256GCM'],
      keyManagementAlgorithms: ['dir'],
    });
    return JSON.parse(new TextDecoder().decode(plaintext)) as JWK;
  } catch {
    throw new ConfigError(
      'ROTOR_SECRET',
      `does not open signing key ${row.kid}: it is not the secret the key was sealed with`,
    );
  }
}
