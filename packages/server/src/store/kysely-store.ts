import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';
import type { RevokeReason, SessionRow, SigningKeyRow, Store, TokenRow, UserRow } from './store.js';

/**
 * The {@link Store} over Kysely: portable SQL that SQLite and PostgreSQL both run.
 * `normalize` converts driver values (PostgreSQL returns bigint as text) into numbers.
 */
export class KyselyStore implements Store {
  readonly #db: Kysely<Database>;
  readonly #onClose: () => Promise<void>;

  constructor(db: Kysely<Database>, onClose: () => Promise<void> = () => db.destroy()) {
    this.#db = db;
    this.#onClose = onClose;
  }

  /** The underlying Kysely instance, for migrations and maintenance commands. */
  get db(): Kysely<Database> {
    return this.#db;
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#db.isTransaction) return fn(this);
    return this.#db.transaction().execute((trx: Transaction<Database>) => fn(new KyselyStore(trx)));
  }

  /**
   * A write that changes nothing: ready means able to write, not only to read (a locked SQLite file
   * or a read-only PostgreSQL standby reads fine but cannot take a login).
   */
  async ping(): Promise<void> {
    await this.#db
      .updateTable('secrets')
      .set({ name: 'ping' })
      .where('name', '=', 'ping')
      .execute();
  }

  close(): Promise<void> {
    return this.#onClose();
  }

  async insertUser(user: UserRow): Promise<boolean> {
    const result = await this.#db
      .insertInto('users')
      .values(user)
      .onConflict((oc) => oc.column('email').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async findUserByEmail(email: string): Promise<UserRow | undefined> {
    const row = await this.#db
      .selectFrom('users')
      .selectAll()
      .where('email', '=', email)
      .executeTakeFirst();
    return row && user(row);
  }

  async findUserById(id: string): Promise<UserRow | undefined> {
    const row = await this.#db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && user(row);
  }

  async insertSession(row: SessionRow): Promise<void> {
    await this.#db.insertInto('sessions').values(row).execute();
  }

  async findSession(id: string): Promise<SessionRow | undefined> {
    const row = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && session(row);
  }

  async listActiveSessions(userId: string, now: number): Promise<SessionRow[]> {
    const rows = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('idle_expires_at', '>', now)
      .where((eb) => eb.or([eb('max_expires_at', 'is', null), eb('max_expires_at', '>', now)]))
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map(session);
  }

  async touchSession(
    id: string,
    patch: Pick<SessionRow, 'last_used_at' | 'idle_expires_at'> &
      Partial<Pick<SessionRow, 'ip' | 'user_agent' | 'delivery'>>,
  ): Promise<void> {
    await this.#db.updateTable('sessions').set(patch).where('id', '=', id).execute();
  }

  async revokeSession(id: string, now: number, reason: RevokeReason): Promise<boolean> {
    const result = await this.#db
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async revokeUserSessions(userId: string, now: number, reason: RevokeReason): Promise<number> {
    const result = await this.#db
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async insertToken(token: TokenRow): Promise<void> {
    await this.#db.insertInto('user_tokens').values(token).execute();
  }

  async findTokenByHash(hash: string): Promise<TokenRow | undefined> {
    const row = await this.#db
      .selectFrom('user_tokens')
      .selectAll()
      .where('token_hash', '=', hash)
      .executeTakeFirst();
    return row && token(row);
  }

  async markTokenRotated(hash: string, now: number, successorHash: string): Promise<boolean> {
    const result = await this.#db
      .updateTable('user_tokens')
      .set({ rotated_at: now, successor_hash: successorHash })
      .where('token_hash', '=', hash)
      .where('rotated_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async pruneEndedSessions(cutoff: number, limit: number): Promise<number> {
    const ended = this.#db
      .selectFrom('sessions')
      .select('id')
      .where((eb) =>
        eb.or([
          eb('revoked_at', '<', cutoff),
          eb('idle_expires_at', '<', cutoff),
          eb('max_expires_at', '<', cutoff),
        ]),
      )
      .limit(limit);
    // Tokens first, explicitly: no reliance on ON DELETE CASCADE being enabled on the connection.
    await this.#db.deleteFrom('user_tokens').where('session_id', 'in', ended).execute();
    const result = await this.#db
      .deleteFrom('sessions')
      .where('id', 'in', ended)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async pruneRotatedTokens(cutoff: number, limit: number): Promise<number> {
    const old = this.#db
      .selectFrom('user_tokens')
      .select('token_hash')
      .where('rotated_at', 'is not', null)
      .where('expires_at', '<', cutoff)
      .limit(limit);
    const result = await this.#db
      .deleteFrom('user_tokens')
      .where('token_hash', 'in', old)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async listSigningKeys(): Promise<SigningKeyRow[]> {
    const rows = await this.#db
      .selectFrom('signing_keys')
      .selectAll()
      .orderBy('created_at', 'asc')
      .execute();
    return rows.map((row) => ({
      ...row,
      created_at: Number(row.created_at),
      retired_at: nullableNumber(row.retired_at),
    }));
  }

  async insertSigningKey(key: SigningKeyRow): Promise<void> {
    await this.#db
      .insertInto('signing_keys')
      .values(key)
      .onConflict((oc) => oc.column('kid').doNothing())
      .execute();
  }

  async retireSigningKeys(keepKid: string, at: number): Promise<void> {
    await this.#db
      .updateTable('signing_keys')
      .set({ retired_at: at })
      .where('kid', '!=', keepKid)
      .where('retired_at', 'is', null)
      .execute();
  }

  async findSecret(name: string): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('secrets')
      .select('value')
      .where('name', '=', name)
      .executeTakeFirst();
    return row?.value;
  }

  async insertSecretIfAbsent(name: string, value: string, now: number): Promise<void> {
    await this.#db
      .insertInto('secrets')
      .values({ name, value, created_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }
}

function nullableNumber(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}

function user(row: UserRow): UserRow {
  return { ...row, created_at: Number(row.created_at) };
}

function session(row: SessionRow): SessionRow {
  return {
    ...row,
    created_at: Number(row.created_at),
    last_used_at: Number(row.last_used_at),
    idle_expires_at: Number(row.idle_expires_at),
    max_expires_at: nullableNumber(row.max_expires_at),
    revoked_at: nullableNumber(row.revoked_at),
  };
}

function token(row: TokenRow): TokenRow {
  return {
    ...row,
    created_at: Number(row.created_at),
    expires_at: Number(row.expires_at),
    rotated_at: nullableNumber(row.rotated_at),
  };
}
