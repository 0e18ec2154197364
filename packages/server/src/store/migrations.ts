import { PostgresAdapter, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { RotorNames } from './naming.js';

/**
 * Migrations in code, shared by every dialect: only portable types (text, bigint, integer).
 * Never edit a shipped migration's effect; add a new one at the end (the list is append-only).
 *
 * Write logical names: `db` carries the naming plugin (naming.ts), which gives every table and
 * index built through Kysely (`createTable`, `createIndex`, `references`, `alterTable`) and every
 * `sql.table()` in raw SQL its prefix and schema. Raw SQL must not spell a table bare; names that
 * are not tables (functions, channels, a table name compared as text) come from `names`.
 */
function rotorMigrations(names: RotorNames): Record<string, Migration> {
  // The trigger functions of migrations 0003 and 0006: schema-level objects, named like tables.
  const changed = names.object('rotor_session_state_changed');
  const keysChanged = names.object('rotor_signing_keys_changed');
  // The one-statement refresh of migration 0013 (tokens.ts, `rotateLiveRefreshToken`).
  const rotateLive = names.object(ROTATE_LIVE_REFRESH_TOKEN);
  return {
    '0001_core': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('email', 'text', (c) => c.notNull().unique())
          .addColumn('name', 'text')
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) =>
            c.notNull().references('users.id').onDelete('cascade'),
          )
          .addColumn('device_name', 'text')
          .addColumn('user_agent', 'text')
          .addColumn('ip', 'text')
          .addColumn('delivery', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_used_at', 'bigint', (c) => c.notNull())
          .addColumn('idle_expires_at', 'bigint', (c) => c.notNull())
          .addColumn('max_expires_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .addColumn('revoked_reason', 'text')
          .execute();
        await db.schema.createIndex('sessions_user_id').on('sessions').column('user_id').execute();

        await db.schema
          .createTable('user_tokens')
          .addColumn('token_hash', 'text', (c) => c.primaryKey())
          .addColumn('session_id', 'text', (c) =>
            c.notNull().references('sessions.id').onDelete('cascade'),
          )
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('rotated_at', 'bigint')
          .addColumn('successor_hash', 'text')
          .execute();
        await db.schema
          .createIndex('user_tokens_session_id')
          .on('user_tokens')
          .column('session_id')
          .execute();

        await db.schema
          .createTable('signing_keys')
          .addColumn('kid', 'text', (c) => c.primaryKey())
          .addColumn('alg', 'text', (c) => c.notNull())
          .addColumn('public_jwk', 'text', (c) => c.notNull())
          .addColumn('private_jwk', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('retired_at', 'bigint')
          .execute();

        await db.schema
          .createTable('secrets')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<unknown>) {
        for (const table of ['secrets', 'signing_keys', 'user_tokens', 'sessions', 'users']) {
          await sql`drop table if exists ${sql.table(table)}`.execute(db);
        }
      },
    },
    '0002_oauth_client': {
      // The OAuth client a session was issued to (RFC 6749 §6: a refresh token is bound to it).
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('sessions').addColumn('client_id', 'text').execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.alterTable('sessions').dropColumn('client_id').execute();
      },
    },
    '0003_session_state_notify': {
      // PostgreSQL only: a revocation or deletion of a session, and any change of a user, notifies
      // the instances' session-state caches at commit (postgres-changes.ts), whoever wrote it. A
      // refresh's new expiry does not notify: an instance that cached the older, earlier expiry only
      // errs towards "expired", and re-reads before answering that (rotor.ts). SQLite needs none of
      // this: its `data_version` tells. Row triggers, so `revoke all` names each session it ended.
      async up(db: Kysely<unknown>) {
        if (!isPostgres(db)) return;
        await sql`
        create or replace function ${changed}() returns trigger
        language plpgsql as $$
        begin
          perform pg_notify(
            ${sql.lit(names.channel)},
            (case when tg_table_name = ${sql.lit(names.table('sessions'))} then 's:' else 'u:' end) || old.id
          );
          return null;
        end $$`.execute(db);
        await sql`
        create trigger sessions_revoked after update of revoked_at on ${sql.table('sessions')}
        for each row when (old.revoked_at is distinct from new.revoked_at)
        execute function ${changed}()`.execute(db);
        await sql`
        create trigger sessions_deleted after delete on ${sql.table('sessions')}
        for each row execute function ${changed}()`.execute(db);
        await sql`
        create trigger users_changed after update or delete on ${sql.table('users')}
        for each row execute function ${changed}()`.execute(db);
      },
      async down(db: Kysely<unknown>) {
        if (!isPostgres(db)) return;
        await sql`drop function if exists ${changed}() cascade`.execute(db);
      },
    },
    '0004_rate_limits': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('rate_limits')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('window_start', 'bigint', (c) => c.notNull())
          .addColumn('count', 'integer', (c) => c.notNull())
          .addColumn('prev_count', 'integer', (c) => c.notNull())
          .addColumn('blocked_until', 'bigint', (c) => c.notNull())
          .addColumn('strikes', 'integer', (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('rate_limits').ifExists().execute();
      },
    },
    '0005_events': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('events')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text')
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('ip', 'text')
          .addColumn('user_agent', 'text')
          .addColumn('session_id', 'text')
          .execute();
        // A user's recent events, newest first. The retention job needs no index of its own: ids
        // begin with the time (audit-log.ts), so it deletes a range of the primary key.
        await db.schema
          .createIndex('events_user_id_at')
          .on('events')
          .columns(['user_id', 'at'])
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('events').ifExists().execute();
      },
    },
    '0006_signing_keys_notify': {
      // PostgreSQL only: a change of the signing keys (a rotation, above all one that retires the
      // old key at once) notifies every instance, whose key ring re-reads them before its next token
      // check. SQLite's `data_version` tells of it like of any other commit.
      async up(db: Kysely<unknown>) {
        if (!isPostgres(db)) return;
        await sql`
        create or replace function ${keysChanged}() returns trigger
        language plpgsql as $$
        begin
          perform pg_notify(${sql.lit(names.channel)}, 'k:');
          return null;
        end $$`.execute(db);
        await sql`
        create trigger signing_keys_changed after insert or update or delete on ${sql.table('signing_keys')}
        for each statement execute function ${keysChanged}()`.execute(db);
      },
      async down(db: Kysely<unknown>) {
        if (!isPostgres(db)) return;
        await sql`drop function if exists ${keysChanged}() cascade`.execute(db);
      },
    },
    '0007_rate_limit_log': {
      // A sliding log per subject instead of a two-window counter (limits/window.ts). Limit states are
      // short-lived by design: starting afresh at the upgrade forgets at most one window of attempts.
      async up(db: Kysely<unknown>) {
        await db.schema.dropTable('rate_limits').ifExists().execute();
        await db.schema
          .createTable('rate_limits')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('rate_limits').ifExists().execute();
      },
    },
    '0008_session_epoch': {
      // Bumped by every change that ends all of a user's sessions (a password change, sign out
      // everywhere): a login verified before the bump creates no session after it (issue 13, item 3).
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable('users')
          .addColumn('session_epoch', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.alterTable('users').dropColumn('session_epoch').execute();
      },
    },
    '0009_own_users_and_login_tickets': {
      // Issue 16, "Your users": a user created for an external sign-in, or mirrored from the app's
      // own user table (engine/user-directory.ts), has no password hash here; and login tickets,
      // stored by the SHA-256 of the ticket only (engine/login-tickets.ts).
      async up(db: Kysely<unknown>) {
        if (isPostgres(db)) {
          await db.schema
            .alterTable('users')
            .alterColumn('password_hash', (c) => c.dropNotNull())
            .execute();
        } else {
          await relaxSqlitePasswordHash(db);
        }
        await db.schema
          .createTable('login_tickets')
          .addColumn('ticket_hash', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) =>
            c.notNull().references('users.id').onDelete('cascade'),
          )
          .addColumn('device_name', 'text')
          // The user's session epoch when the ticket was issued: a sign-out everywhere or a
          // password change after it voids the ticket (startSession compares the epochs).
          .addColumn('session_epoch', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('login_tickets_expires_at')
          .on('login_tickets')
          .column('expires_at')
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('login_tickets').ifExists().execute();
      },
    },
    '0010_account_mail': {
      // Issue 17: whether the address is proven, and the single-use tokens of the account mails
      // (password reset, verification, email change and its undo), stored by their SHA-256 only.
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('users').addColumn('email_verified_at', 'bigint').execute();
        await db.schema
          .createTable('email_tokens')
          .addColumn('token_hash', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) =>
            c.notNull().references('users.id').onDelete('cascade'),
          )
          .addColumn('purpose', 'text', (c) => c.notNull())
          .addColumn('email', 'text', (c) => c.notNull())
          .addColumn('new_email', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('email_tokens_user_purpose')
          .on('email_tokens')
          .columns(['user_id', 'purpose'])
          .execute();
        await db.schema
          .createIndex('email_tokens_expires_at')
          .on('email_tokens')
          .column('expires_at')
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('email_tokens').ifExists().execute();
        await db.schema.alterTable('users').dropColumn('email_verified_at').execute();
      },
    },
    '0011_email_tokens_by_address': {
      // Issue 17's attack review: an address an email change left stays reserved while its undo
      // link lives, so every sign-up and change looks its tokens up by address.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createIndex('email_tokens_email_purpose')
          .on('email_tokens')
          .columns(['email', 'purpose'])
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropIndex('email_tokens_email_purpose').ifExists().execute();
      },
    },
    '0012_dpop': {
      // Issue 18 (RFC 9449): the JWK thumbprint a session is bound to (null: a Bearer session),
      // and the jtis of accepted DPoP proofs (keyed by their hash) until they could no longer be
      // accepted anyway, so a proof is accepted once across every instance on this database.
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('sessions').addColumn('dpop_jkt', 'text').execute();
        await db.schema
          .createTable('dpop_proofs')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('dpop_proofs_expires_at')
          .on('dpop_proofs')
          .column('expires_at')
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('dpop_proofs').ifExists().execute();
        await db.schema.alterTable('sessions').dropColumn('dpop_jkt').execute();
      },
    },
    '0013_refresh_in_one_statement': {
      // PostgreSQL only (issue 19): the common refresh, a live token of a live session, decided
      // and written in one call, so one round trip instead of seven (BEGIN, the locking read, the
      // clock, the rotation, the successor, the session, COMMIT). The same statements in the same
      // order as `decide` (rotate-refresh-token.ts), in the call's own transaction: the session's
      // row locked first, then the database's clock, then the token read after the lock (a
      // statement of a plpgsql function in READ COMMITTED sees what committed before it began, so
      // a racer that rotated while this one waited is seen). Anything but the common case returns
      // null having written nothing, and the caller takes the full transaction, which tells every
      // other case apart (unknown, ended, bound to another key, in the grace window, re-used).
      // Times are milliseconds since the epoch; `p_now` is an injected clock's time (tests), null
      // for the database's clock.
      async up(db: Kysely<unknown>) {
        if (!isPostgres(db)) return;
        const sessions = sql.table('sessions');
        const users = sql.table('users');
        const tokens = sql.table('user_tokens');
        await sql`
        create or replace function ${rotateLive}(
          p_token_hash text, p_session_id text, p_successor_hash text, p_now bigint,
          p_refresh_ttl_ms bigint, p_client_id text, p_dpop_jkt text, p_require_binding boolean,
          p_deliveries text[], p_delivery text, p_ip text, p_user_agent text
        ) returns json
        language plpgsql volatile as $$
        declare
          v_session ${sessions}%rowtype;
          v_user ${users}%rowtype;
          v_token ${tokens}%rowtype;
          v_now bigint;
          v_expires bigint;
        begin
          select * into v_session from ${sessions} where id = p_session_id for update;
          if not found then return null; end if;
          -- After the lock: a time read before waiting for it would lag behind the holder's writes.
          v_now := coalesce(p_now, floor(extract(epoch from clock_timestamp()) * 1000)::bigint);
          select * into v_token from ${tokens} where token_hash = p_token_hash;
          if not found or v_token.session_id <> p_session_id
            or v_token.rotated_at is not null or v_token.expires_at <= v_now then
            return null;
          end if;
          if v_session.client_id is distinct from p_client_id
            or v_session.revoked_at is not null
            or v_session.idle_expires_at <= v_now
            or v_session.max_expires_at <= v_now
            or not (v_session.delivery = any(p_deliveries))
            -- a move to another address or user agent is recorded (an audit event): the full path
            or v_session.ip is distinct from p_ip
            or v_session.user_agent is distinct from p_user_agent then
            return null;
          end if;
          if v_session.dpop_jkt is null then
            if p_require_binding then return null; end if;
          elsif p_dpop_jkt is null or v_session.dpop_jkt <> p_dpop_jkt then
            return null;
          end if;
          select * into v_user from ${users} where id = v_session.user_id;
          if not found then return null; end if;
          v_expires := least(v_now + p_refresh_ttl_ms, coalesce(v_session.max_expires_at, v_now + p_refresh_ttl_ms));
          update ${tokens} set rotated_at = v_now, successor_hash = p_successor_hash
            where token_hash = p_token_hash and rotated_at is null;
          if not found then return null; end if;
          insert into ${tokens} (token_hash, session_id, type, created_at, expires_at, rotated_at, successor_hash)
            values (p_successor_hash, p_session_id, 'refresh', v_now, v_expires, null, null);
          update ${sessions} set last_used_at = v_now, idle_expires_at = v_expires, ip = p_ip,
            user_agent = p_user_agent, delivery = coalesce(p_delivery, v_session.delivery)
            where id = p_session_id;
          return json_build_object('session', row_to_json(v_session), 'user', row_to_json(v_user),
            'now', v_now, 'expires_at', v_expires);
        end $$`.execute(db);
      },
      async down(db: Kysely<unknown>) {
        if (!isPostgres(db)) return;
        await sql`drop function if exists ${rotateLive}(text, text, text, bigint, bigint, text, text, boolean, text[], text, text, text)`.execute(
          db,
        );
      },
    },
  };
}

/** The logical name of migration 0013's function (named like a table: `names.object`). */
export const ROTATE_LIVE_REFRESH_TOKEN = 'rotor_rotate_live_refresh_token';

export function isPostgres(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/**
 * Supplies the migrations above to Kysely's `Migrator`, for Rotor's tables named by `names`; run
 * them over a handle that carries `names.plugin`.
 */
export function migrationProvider(names: RotorNames): MigrationProvider {
  return { getMigrations: async () => rotorMigrations(names) };
}

/**
 * SQLite cannot drop a NOT NULL constraint: the table is rebuilt (SQLite's "making other kinds of
 * table schema changes", section 7 of its ALTER TABLE page). Foreign keys are off meanwhile, or
 * dropping the old table would cascade into every session; SQLite migrations run outside a
 * transaction (Kysely's SQLite adapter has no transactional DDL), so the pragma takes effect, and
 * the rebuild itself is one transaction. Tables through `sql.table`, so a prefix applies.
 */
async function relaxSqlitePasswordHash(db: Kysely<unknown>): Promise<void> {
  await sql`pragma foreign_keys = off`.execute(db);
  try {
    await db.transaction().execute(async (tx) => {
      await sql`
        create table ${sql.table('users_new')} (
          id text primary key,
          email text not null unique,
          name text,
          password_hash text,
          created_at bigint not null,
          session_epoch integer not null default 0
        )`.execute(tx);
      await sql`
        insert into ${sql.table('users_new')}
          (id, email, name, password_hash, created_at, session_epoch)
        select id, email, name, password_hash, created_at, session_epoch
          from ${sql.table('users')}`.execute(tx);
      await sql`drop table ${sql.table('users')}`.execute(tx);
      await sql`alter table ${sql.table('users_new')} rename to ${sql.table('users')}`.execute(tx);
      const { rows } = await sql<{ table: string }>`pragma foreign_key_check`.execute(tx);
      if (rows.length > 0) throw new Error('rebuilding users left rows without their user');
    });
  } finally {
    await sql`pragma foreign_keys = on`.execute(db);
  }
}
