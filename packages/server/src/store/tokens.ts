import { sql } from 'kysely';
import type { StoreContext } from './context.js';
import { ROTATE_LIVE_REFRESH_TOKEN } from './migrations.js';
import { sessionRow, sessionWithUserRow, tokenRow, userRow } from './rows.js';
import { sessionsWithUsers } from './sessions.js';
import type { SessionRow, SessionWithUser, TokenRow, UserRow } from './store.js';

/** What {@link TokenStore.rotateLiveRefreshToken} is asked to rotate, and under which rules. */
export interface LiveRotationInput {
  /** The presented token's hash, the session it was issued to (a hint: checked), its successor's. */
  tokenHash: string;
  sessionId: string;
  successorHash: string;
  /** The decision's time, ms since the epoch; undefined: the database's clock, read after the lock. */
  now: number | undefined;
  /** The successor's idle lifetime in ms (capped by the session's maximum lifetime). */
  refreshTtlMs: number;
  /** The OAuth client the session must belong to; null: a session of `/auth`. */
  clientId: string | null;
  /** The thumbprint of the request's checked DPoP proof, null without one. */
  dpopJkt: string | null;
  /** `ROTOR_DPOP=required`: an unbound session is not rotated here. */
  requireBinding: boolean;
  /** The stored deliveries the request may be answered for (the `Token-Delivery` rule). */
  deliveries: readonly string[];
  /** The delivery to store from now on; null keeps the session's. */
  delivery: string | null;
  ip: string | null;
  userAgent: string | null;
}

/** A rotation done by {@link TokenStore.rotateLiveRefreshToken}. */
export interface LiveRotation {
  /** The session and its user as they were before the rotation. */
  session: SessionRow;
  user: UserRow;
  /** The decision's time and the successor's expiry, ms since the epoch. */
  now: number;
  refreshExpiresAt: number;
}

/** Refresh tokens: the `user_tokens` table (hashes, never the tokens). */
export interface TokenStore {
  insertToken(token: TokenRow): Promise<void>;
  findTokenByHash(hash: string): Promise<TokenRow | undefined>;
  /**
   * A token with its session and the session's user, in one read (the refresh path); undefined
   * unless all three exist. Holds the session's row until the transaction ends (PostgreSQL
   * `FOR UPDATE OF sessions`; on SQLite a read transaction cannot write over a newer commit), so a
   * revocation of the session and a rotation of its token are ordered: no refresh commits after a
   * revocation it did not see (issue 15, item 4).
   */
  findTokenWithSession(hash: string): Promise<(SessionWithUser & { token: TokenRow }) | undefined>;
  /**
   * The last token of the chain of successors that starts after `hash` (the token `successor_hash`
   * names, its own successor, …), followed in one recursive query, at most `maxLinks` links; with
   * how many links it is from `hash` (1: the successor itself). Undefined if `hash` has no successor
   * row. The tip is rotated itself only when the walk stopped at `maxLinks`.
   */
  findChainTip(
    hash: string,
    maxLinks: number,
  ): Promise<{ token: TokenRow; links: number } | undefined>;
  /**
   * Marks a live token rotated, only if no one else did first: the conditional update that exactly
   * one racer wins (DESIGN.md, "The refresh decision").
   */
  markTokenRotated(hash: string, now: number, successorHash: string): Promise<boolean>;
  /** Deletes up to `limit` rotated refresh tokens whose own expiry is before `cutoff`. */
  pruneRotatedTokens(cutoff: number, limit: number): Promise<number>;
  /**
   * The common refresh in one statement (issue 19; PostgreSQL only, absent on SQLite, whose
   * transactions cost no round trips): when `tokenHash` is a live, unexpired token of the live
   * session `sessionId`, and the session passes every rule of `input` without moving (same
   * address and user agent), rotates it as the full decision would (the session's row locked, the
   * token marked rotated, its successor inserted, the session touched) and returns the rows;
   * otherwise changes nothing and returns undefined, and the caller decides in a transaction.
   * Migration 0013's function; outside any transaction (it is one).
   */
  rotateLiveRefreshToken?(input: LiveRotationInput): Promise<LiveRotation | undefined>;
}

/** The JSON migration 0013's function answers with (`row_to_json` of the two rows). */
interface LiveRotationJson {
  session: SessionRow;
  user: UserRow;
  now: number | string;
  expires_at: number | string;
}

/** The {@link TokenStore} over Kysely. */
export function tokenStore({ db, postgres, names, changed }: StoreContext): TokenStore {
  const rotateLive = names.object(ROTATE_LIVE_REFRESH_TOKEN);
  const oneStatement: Pick<TokenStore, 'rotateLiveRefreshToken'> = {
    async rotateLiveRefreshToken(input) {
      // Told before and after (the statement commits on its own): a cache that read the session
      // while the statement ran must not keep that read (changes.ts).
      changed((l) => l.session(input.sessionId));
      const { rows } = await sql<{ rotation: string | LiveRotationJson | null }>`
        select ${rotateLive}(
          ${input.tokenHash}, ${input.sessionId}, ${input.successorHash}, ${input.now ?? null}::bigint,
          ${input.refreshTtlMs}::bigint, ${input.clientId}, ${input.dpopJkt}, ${input.requireBinding},
          ${input.deliveries}::text[], ${input.delivery}, ${input.ip}, ${input.userAgent}
        ) as rotation`.execute(db);
      const rotation = rows[0]?.rotation ?? null;
      if (rotation === null) return undefined;
      changed((l) => l.session(input.sessionId));
      const json =
        typeof rotation === 'string' ? (JSON.parse(rotation) as LiveRotationJson) : rotation;
      return {
        session: sessionRow(json.session),
        user: userRow(json.user),
        now: Number(json.now),
        refreshExpiresAt: Number(json.expires_at),
      };
    },
  };
  return {
    ...(postgres && !db.isTransaction ? oneStatement : {}),
    async insertToken(token) {
      await db.insertInto('user_tokens').values(token).execute();
    },

    async findTokenByHash(hash) {
      const row = await db
        .selectFrom('user_tokens')
        .selectAll()
        .where('token_hash', '=', hash)
        .executeTakeFirst();
      return row && tokenRow(row);
    },

    async findTokenWithSession(hash) {
      let query = sessionsWithUsers(db)
        .innerJoin('user_tokens', 'user_tokens.session_id', 'sessions.id')
        .select([
          'user_tokens.type as token_type',
          'user_tokens.created_at as token_created_at',
          'user_tokens.expires_at as token_expires_at',
          'user_tokens.rotated_at as token_rotated_at',
          'user_tokens.successor_hash as token_successor_hash',
        ])
        .where('user_tokens.token_hash', '=', hash);
      // SQLite needs no lock: the server's transactions run one at a time on its one connection,
      // and a transaction that has read cannot write once another process (the CLI's revoke)
      // committed after its read (WAL: SQLITE_BUSY_SNAPSHOT, at once, without the busy wait), so a
      // rotation never commits over a revocation it did not see; it answers 503 and nothing changes.
      if (postgres) query = query.forUpdate(['sessions']);
      const row = await query.executeTakeFirst();
      if (!row) return undefined;
      const {
        token_type,
        token_created_at,
        token_expires_at,
        token_rotated_at,
        token_successor_hash,
        ...joined
      } = row;
      return {
        ...sessionWithUserRow(joined),
        token: tokenRow({
          token_hash: hash,
          session_id: joined.id,
          type: token_type,
          created_at: token_created_at,
          expires_at: token_expires_at,
          rotated_at: token_rotated_at,
          successor_hash: token_successor_hash,
        }),
      };
    },

    async findChainTip(hash, maxLinks) {
      // `sql.table`, not the bare name: the table's schema and prefix (naming.ts) apply here too.
      const tokens = sql.table('user_tokens');
      const { rows } = await sql<TokenRow & { links: number | string }>`
        with recursive chain as (
          select t.*, 1 as links from ${tokens} t
            where t.token_hash = (select successor_hash from ${tokens} where token_hash = ${hash})
          union all
          select t.*, chain.links + 1 from ${tokens} t
            join chain on t.token_hash = chain.successor_hash
            where chain.links < ${maxLinks}
        )
        select * from chain order by links desc limit 1`.execute(db);
      const row = rows[0];
      if (!row) return undefined;
      const { links, ...rest } = row;
      return { token: tokenRow(rest), links: Number(links) };
    },

    async markTokenRotated(hash, now, successorHash) {
      const result = await db
        .updateTable('user_tokens')
        .set({ rotated_at: now, successor_hash: successorHash })
        .where('token_hash', '=', hash)
        .where('rotated_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async pruneRotatedTokens(cutoff, limit) {
      const old = db
        .selectFrom('user_tokens')
        .select('token_hash')
        .where('rotated_at', 'is not', null)
        .where('expires_at', '<', cutoff)
        .limit(limit);
      const result = await db
        .deleteFrom('user_tokens')
        .where('token_hash', 'in', old)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
