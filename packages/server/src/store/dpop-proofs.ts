import type { StoreContext } from './context.js';

/** The jtis of accepted DPoP proofs (RFC 9449 §11.1), shared by every instance on the database. */
export interface DpopProofStore {
  /**
   * Records `key` until `expiresAt` (ms since the epoch): true when it was not recorded before,
   * false when it was and has not expired at `now`. One INSERT … ON CONFLICT, atomic on both
   * dialects, so of concurrent claims of one key exactly one wins, on any instance.
   */
  claimDpopProof(key: string, expiresAt: number, now: number): Promise<boolean>;
  /** Deletes records that expired before `now`; how many. */
  pruneDpopProofs(now: number): Promise<number>;
}

/** The {@link DpopProofStore} over Kysely. */
export function dpopProofStore({ db }: StoreContext): DpopProofStore {
  return {
    async claimDpopProof(key, expiresAt, now) {
      // An expired record of the same key (not yet pruned) is taken over: a proof that old is
      // refused by its iat anyway, so the key is free again.
      const row = await db
        .insertInto('dpop_proofs')
        .values({ key, expires_at: expiresAt })
        .onConflict((oc) =>
          oc
            .column('key')
            .doUpdateSet({ expires_at: expiresAt })
            .where('dpop_proofs.expires_at', '<=', now),
        )
        .returning('key')
        .executeTakeFirst();
      return row !== undefined;
    },

    async pruneDpopProofs(now) {
      const result = await db
        .deleteFrom('dpop_proofs')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
