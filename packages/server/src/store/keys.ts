import type { StoreContext } from './context.js';
import { nullableNumber } from './rows.js';
import type { SigningKeyRow } from './store.js';

/** Key material: the `signing_keys` and `secrets` tables. */
export interface KeyStore {
  listSigningKeys(): Promise<SigningKeyRow[]>;
  /** Inserts a key unless one with that kid exists. */
  insertSigningKey(key: SigningKeyRow): Promise<void>;
  /** Every key but `keepKid` leaves the JWKS at `at` at the latest. */
  retireSigningKeys(keepKid: string, at: number): Promise<void>;
  findSecret(name: string): Promise<string | undefined>;
  /** Keeps the first value ever written under `name` (instances racing at start agree). */
  insertSecretIfAbsent(name: string, value: string, now: number): Promise<void>;
}

/** The {@link KeyStore} over Kysely. */
export function keyStore({ db }: StoreContext): KeyStore {
  return {
    async listSigningKeys() {
      const rows = await db
        .selectFrom('signing_keys')
        .selectAll()
        .orderBy('created_at', 'asc')
        .execute();
      return rows.map((row) => ({
        ...row,
        created_at: Number(row.created_at),
        retired_at: nullableNumber(row.retired_at),
      }));
    },

    async insertSigningKey(key) {
      await db
        .insertInto('signing_keys')
        .values(key)
        .onConflict((oc) => oc.column('kid').doNothing())
        .execute();
    },

    async retireSigningKeys(keepKid, at) {
      await db
        .updateTable('signing_keys')
        .set({ retired_at: at })
        .where('kid', '!=', keepKid)
        // Also keys already retiring, but later: a key retired at once may be an older one.
        .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', at)]))
        .execute();
    },

    async findSecret(name) {
      const row = await db
        .selectFrom('secrets')
        .select('value')
        .where('name', '=', name)
        .executeTakeFirst();
      return row?.value;
    },

    async insertSecretIfAbsent(name, value, now) {
      await db
        .insertInto('secrets')
        .values({ name, value, created_at: now })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
    },
  };
}
