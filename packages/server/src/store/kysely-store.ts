import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { eventIdPrefix, eventIdTime } from '../audit/audit-log.js';
import type { LimitState } from '../limits/window.js';
import {
  noExternalChanges,
  type ChangeWatch,
  type ExternalChanges,
  type SessionStateListener,
} from './changes.js';
import { isPostgres } from './migrations.js';
import type { Database, RateLimitsTable } from './schema.js';
import type {
  EventRow,
  KeysetPage,
  LoginTicketRow,
  RevokeReason,
  RowSlice,
  SessionKey,
  SessionRow,
  SessionWithUser,
  SigningKeyRow,
  Store,
  TokenRow,
  UserRow,
} from './store.js';

export interface KyselyStoreOptions {
  /** Runs on {@link KyselyStore.close}; defaults to destroying `db`. */
  onClose?: () => Promise<void>;
  /** Other processes' writes, per dialect; without it no cache may answer. */
  changes?: ExternalChanges;
}

type Change = (listener: SessionStateListener) => void;

/**
 * The {@link Store} over Kysely: portable SQL that SQLite and PostgreSQL both run.
 * `normalize` converts driver values (PostgreSQL returns bigint as text) into numbers.
 */
export class KyselyStore implements Store {
  readonly #db: Kysely<Database>;
  readonly #onClose: () => Promise<void>;
  readonly #changes: ExternalChanges;
  readonly #listeners: Set<SessionStateListener>;
  /** In a transaction: the changes to report again once it has ended. */
  readonly #pending: Change[] | undefined;

  constructor(
    db: Kysely<Database>,
    options: KyselyStoreOptions = {},
    /** Internal: a transaction's store shares its parent's listeners. */
    shared?: { listeners: Set<SessionStateListener>; pending: Change[] },
  ) {
    this.#db = db;
    this.#onClose = options.onClose ?? (() => db.destroy());
    this.#changes = options.changes ?? noExternalChanges;
    this.#listeners = shared?.listeners ?? new Set();
    this.#pending = shared?.pending;
  }

  /** PostgreSQL (row locks, its own clock) rather than SQLite. */
  get #postgres(): boolean {
    return isPostgres(this.#db as Kysely<unknown>);
  }

  /** The underlying Kysely instance, for migrations and maintenance commands. */
  get db(): Kysely<Database> {
    return this.#db;
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#db.isTransaction) return fn(this);
    const pending: Change[] = [];
    const shared = { listeners: this.#listeners, pending };
    try {
      return await this.#db
        .transaction()
        .execute((trx: Transaction<Database>) =>
          fn(new KyselyStore(trx, { changes: this.#changes }, shared)),
        );
    } finally {
      // Reported at the write and again once the transaction has ended: a cache that re-read the
      // old row from another connection in between must forget it too (PostgreSQL).
      for (const change of pending) this.#listeners.forEach(change);
    }
  }

  watchSessionState(listener: SessionStateListener): ChangeWatch {
    this.#listeners.add(listener);
    const external = this.#changes.watch(listener);
    return {
      current: () => external.current(),
      close: async () => {
        this.#listeners.delete(listener);
        await external.close();
      },
    };
  }

  /** Tells every listener now, and again after the transaction if there is one. */
  #changed(change: Change): void {
    this.#listeners.forEach(change);
    this.#pending?.push(change);
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

  async databaseNow(): Promise<number | undefined> {
    if (!this.#postgres) return undefined;
    // clock_timestamp(), not now(): the latter is the transaction's start, which a lock wait
    // would leave behind.
    const { rows } = await sql<{
      now: string;
    }>`select floor(extract(epoch from clock_timestamp()) * 1000)::bigint as now`.execute(this.#db);
    return Number(rows[0]!.now);
  }

  async close(): Promise<void> {
    await this.#changes.close();
    await this.#onClose();
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

  async updatePasswordHash(userId: string, passwordHash: string): Promise<void> {
    await this.#db
      .updateTable('users')
      .set((eb) => ({
        password_hash: passwordHash,
        session_epoch: eb('session_epoch', '+', 1),
      }))
      .where('id', '=', userId)
      .execute();
    this.#changed((l) => l.user(userId));
  }

  async bumpSessionEpoch(userId: string): Promise<void> {
    await this.#db
      .updateTable('users')
      .set((eb) => ({ session_epoch: eb('session_epoch', '+', 1) }))
      .where('id', '=', userId)
      .execute();
    this.#changed((l) => l.user(userId));
  }

  async lockUser(id: string): Promise<UserRow | undefined> {
    let query = this.#db.selectFrom('users').selectAll().where('id', '=', id);
    if (this.#postgres) {
      query = query.forUpdate();
    } else {
      // SQLite locks the whole database for a writer; a write that changes nothing takes that
      // lock now, so no other process commits between this read and the transaction's writes.
      await this.#db.updateTable('users').set({ id }).where('id', '=', id).execute();
    }
    const row = await query.executeTakeFirst();
    return row && user(row);
  }

  async listLiveSessionIdsByUse(userId: string, now: number): Promise<string[]> {
    const rows = await this.#liveSessions(now)
      .select('id')
      .where('user_id', '=', userId)
      .orderBy('last_used_at', 'asc')
      .orderBy('id', 'asc')
      .execute();
    return rows.map((row) => row.id);
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

  async findSessionWithUser(id: string): Promise<SessionWithUser | undefined> {
    const row = await this.#sessionsWithUsers().where('sessions.id', '=', id).executeTakeFirst();
    return row && sessionWithUser(row);
  }

  /** Sessions joined to their users: the session's columns, and the user's as `user_*`. */
  #sessionsWithUsers() {
    return this.#db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .selectAll('sessions')
      .select([
        'users.email as user_email',
        'users.name as user_name',
        'users.password_hash as user_password_hash',
        'users.created_at as user_created_at',
        'users.session_epoch as user_session_epoch',
      ]);
  }

  /**
   * Sessions live at `now`: not revoked, within their idle expiry and their maximum lifetime. The
   * one SQL spelling of "not revoked and `sessionEndsAt(session) > now`" (sessions/session-state.ts).
   */
  #liveSessions(now: number) {
    return this.#db
      .selectFrom('sessions')
      .where('revoked_at', 'is', null)
      .where('idle_expires_at', '>', now)
      .where((eb) => eb.or([eb('max_expires_at', 'is', null), eb('max_expires_at', '>', now)]));
  }

  async countActiveSessions(now: number): Promise<number> {
    const row = await this.#liveSessions(now)
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async listActiveSessions(
    userId: string,
    now: number,
    page: KeysetPage<SessionKey>,
  ): Promise<RowSlice<SessionRow>> {
    let query = this.#liveSessions(now).selectAll().where('user_id', '=', userId);
    const after = page.after;
    if (after) {
      // (created_at, id) < (after): spelled out, as SQLite before 3.15 has no row values.
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '<', after.createdAt),
          eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)]),
        ]),
      );
    }
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit + 1)
      .execute();
    return slice(rows.map(session), page.limit);
  }

  async touchSession(
    id: string,
    patch: Pick<SessionRow, 'last_used_at' | 'idle_expires_at'> &
      Partial<Pick<SessionRow, 'ip' | 'user_agent' | 'delivery'>>,
  ): Promise<void> {
    await this.#db.updateTable('sessions').set(patch).where('id', '=', id).execute();
    this.#changed((l) => l.session(id));
  }

  async revokeSession(id: string, now: number, reason: RevokeReason): Promise<boolean> {
    const result = await this.#db
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    this.#changed((l) => l.session(id));
    return Number(result.numUpdatedRows) === 1;
  }

  async revokeUserSessions(
    userId: string,
    now: number,
    reason: RevokeReason,
    exceptSessionId?: string,
  ): Promise<number> {
    let query = this.#db
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    if (exceptSessionId !== undefined) query = query.where('id', '!=', exceptSessionId);
    const result = await query.executeTakeFirst();
    this.#changed((l) => l.user(userId));
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

  async findTokenWithSession(
    hash: string,
  ): Promise<(SessionWithUser & { token: TokenRow }) | undefined> {
    let query = this.#sessionsWithUsers()
      .innerJoin('user_tokens', 'user_tokens.session_id', 'sessions.id')
      .select([
        'user_tokens.type as token_type',
        'user_tokens.created_at as token_created_at',
        'user_tokens.expires_at as token_expires_at',
        'user_tokens.rotated_at as token_rotated_at',
        'user_tokens.successor_hash as token_successor_hash',
      ])
      .where('user_tokens.token_hash', '=', hash);
    // SQLite needs no lock: the server's transactions run one at a time on its one connection, and
    // a transaction that has read cannot write once another process (the CLI's revoke) committed
    // after its read (WAL: SQLITE_BUSY_SNAPSHOT, at once, without the busy wait), so a rotation
    // never commits over a revocation it did not see; it answers 503 and nothing changes.
    if (this.#postgres) query = query.forUpdate(['sessions']);
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
      ...sessionWithUser(joined),
      token: token({
        token_hash: hash,
        session_id: joined.id,
        type: token_type,
        created_at: token_created_at,
        expires_at: token_expires_at,
        rotated_at: token_rotated_at,
        successor_hash: token_successor_hash,
      }),
    };
  }

  async findChainTip(
    hash: string,
    maxLinks: number,
  ): Promise<{ token: TokenRow; links: number } | undefined> {
    const { rows } = await sql<TokenRow & { links: number | string }>`
      with recursive chain as (
        select t.*, 1 as links from user_tokens t
          where t.token_hash = (select successor_hash from user_tokens where token_hash = ${hash})
        union all
        select t.*, chain.links + 1 from user_tokens t
          join chain on t.token_hash = chain.successor_hash
          where chain.links < ${maxLinks}
      )
      select * from chain order by links desc limit 1`.execute(this.#db);
    const row = rows[0];
    if (!row) return undefined;
    const { links, ...rest } = row;
    return { token: token(rest), links: Number(links) };
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
    this.#changed((l) => l.all());
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

  async insertEvent(event: EventRow): Promise<void> {
    await this.#db.insertInto('events').values(event).execute();
  }

  async listUserEvents(userId: string, page: KeysetPage<string>): Promise<RowSlice<EventRow>> {
    let query = this.#db.selectFrom('events').selectAll().where('user_id', '=', userId);
    const after = page.after;
    if (after !== undefined) {
      // Ids begin with their time (audit-log.ts), so id order is (at, id) order; spelled with `at`
      // first, the (user_id, at) index finds the page instead of sorting all the user's events.
      const at = eventIdTime(after);
      query = query.where((eb) =>
        eb.or([eb('at', '<', at), eb.and([eb('at', '=', at), eb('id', '<', after)])]),
      );
    }
    const rows = await query
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit + 1)
      .execute();
    return slice(
      rows.map((row) => ({ ...row, at: Number(row.at) })),
      page.limit,
    );
  }

  async pruneEvents(cutoff: number, limit: number): Promise<number> {
    // Ids begin with the time (audit-log.ts): a range of the primary key, no index on `at`.
    const old = this.#db
      .selectFrom('events')
      .select('id')
      .where('id', '<', eventIdPrefix(cutoff))
      .limit(limit);
    const result = await this.#db.deleteFrom('events').where('id', 'in', old).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async updateRateLimit(
    key: string,
    change: (state: LimitState | undefined) => LimitState,
  ): Promise<void> {
    await this.transaction(async (store) => {
      const db = (store as KyselyStore).#db;
      // Insert first: on SQLite that takes the write lock, on PostgreSQL the row then exists to
      // be locked; either way no other update of this key runs between the read and the write,
      // whichever instance it comes from.
      await db
        .insertInto('rate_limits')
        .values({ key, events: '[]', expires_at: 0 })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      let query = db.selectFrom('rate_limits').selectAll().where('key', '=', key);
      if (isPostgres(db as Kysely<unknown>)) query = query.forUpdate();
      const row = await query.executeTakeFirst();
      const next = change(row && Number(row.expires_at) !== 0 ? limitState(row) : undefined);
      await db
        .updateTable('rate_limits')
        .set({
          events: JSON.stringify(next.events),
          expires_at: next.expiresAt,
        })
        .where('key', '=', key)
        .execute();
    });
  }

  async pruneRateLimits(now: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('rate_limits')
      .where('expires_at', '<', now)
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
      // Also keys already retiring, but later: a key retired at once may be an older one.
      .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', at)]))
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

  // login tickets (issue 16)
  async mirrorUser(
    mirror: Pick<UserRow, 'id' | 'email' | 'name' | 'created_at'>,
  ): Promise<UserRow> {
    await this.#db
      .insertInto('users')
      .values({ ...mirror, password_hash: null, session_epoch: 0 })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    const row = user(
      (await this.#db
        .selectFrom('users')
        .selectAll()
        .where('id', '=', mirror.id)
        .executeTakeFirstOrThrow()) as UserRow,
    );
    // Written only when the directory's values moved: a write of a user notifies every
    // instance's session cache (PostgreSQL trigger), which a login need not cost.
    if (row.email === mirror.email && row.name === mirror.name) return row;
    await this.#db
      .updateTable('users')
      .set({ email: mirror.email, name: mirror.name })
      .where('id', '=', mirror.id)
      .execute();
    this.#changed((l) => l.user(mirror.id));
    return { ...row, email: mirror.email, name: mirror.name };
  }

  async upgradePasswordHash(userId: string, oldHash: string, newHash: string): Promise<boolean> {
    const result = await this.#db
      .updateTable('users')
      .set({ password_hash: newHash })
      .where('id', '=', userId)
      .where('password_hash', '=', oldHash)
      .executeTakeFirst();
    const upgraded = Number(result.numUpdatedRows) === 1;
    if (upgraded) this.#changed((l) => l.user(userId));
    return upgraded;
  }

  async insertLoginTicket(ticket: LoginTicketRow): Promise<void> {
    await this.#db.insertInto('login_tickets').values(ticket).execute();
  }

  async consumeLoginTicket(hash: string, now: number): Promise<LoginTicketRow | undefined> {
    const row = await this.#db
      .deleteFrom('login_tickets')
      .where('ticket_hash', '=', hash)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    return (
      row && {
        ...row,
        created_at: Number(row.created_at),
        expires_at: Number(row.expires_at),
      }
    );
  }

  async pruneLoginTickets(now: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('login_tickets')
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/** The first `limit` of `rows` (read with one extra), and whether the extra was there. */
function slice<Row>(rows: Row[], limit: number): RowSlice<Row> {
  return { rows: rows.slice(0, limit), more: rows.length > limit };
}

function limitState(row: Selectable<RateLimitsTable>): LimitState {
  return {
    events: (JSON.parse(row.events) as unknown[]).map(Number),
    expiresAt: Number(row.expires_at),
  };
}

function nullableNumber(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}

/** A row of {@link KyselyStore}'s sessions-with-users join, split into its two rows. */
function sessionWithUser(
  row: SessionRow & {
    user_email: string;
    user_name: string | null;
    user_password_hash: string | null;
    user_created_at: number;
    user_session_epoch: number;
  },
): SessionWithUser {
  const {
    user_email,
    user_name,
    user_password_hash,
    user_created_at,
    user_session_epoch,
    ...sessionRow
  } = row;
  return {
    session: session(sessionRow),
    user: user({
      id: sessionRow.user_id,
      email: user_email,
      name: user_name,
      password_hash: user_password_hash,
      created_at: user_created_at,
      session_epoch: user_session_epoch,
    }),
  };
}

function user(row: UserRow): UserRow {
  return { ...row, created_at: Number(row.created_at), session_epoch: Number(row.session_epoch) };
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
