import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createRotor,
  createStore,
  loadConfig,
  migrate,
  openStore,
  type CreateStoreOptions,
  type KyselyStore,
} from '@rotor/server';
import { codeOf, DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** The application's own tables, named like Rotor's but shaped otherwise, with a row each. */
const APP_TABLES = [
  'create table users (id integer primary key, username text not null)',
  "insert into users (id, username) values (1, 'app-user')",
  'create table sessions (token text primary key, data text)',
  "insert into sessions (token, data) values ('app-token', 'app-data')",
];
const APP_ROWS = {
  users: [{ id: 1, username: 'app-user' }],
  sessions: [{ token: 'app-token', data: 'app-data' }],
};

/** Sign-up, login, refresh and revoke through a Rotor on `store`; its tables stay its own. */
async function exercise(store: KyselyStore, url: string) {
  const rotor = await createRotor(loadConfig({ ROTOR_DATABASE_URL: url }), { store });
  try {
    await rotor.register({ email: 'ada@example.com', password: PASSWORD });
    const client = { ip: '203.0.113.1', userAgent: 'vitest' };
    const grant = await rotor.login({
      email: 'ada@example.com',
      password: PASSWORD,
      deviceName: null,
      delivery: 'body',
      ...client,
    });
    const refreshed = await rotor.refresh({ refreshToken: grant.refreshToken, ...client });
    const principal = await rotor.authenticate(refreshed.accessToken);
    expect(await rotor.logoutSession(principal.session.id)).toBe(true);
    expect(await codeOf(rotor.authenticate(refreshed.accessToken))).toBe('session_revoked');
    expect(await codeOf(rotor.refresh({ refreshToken: refreshed.refreshToken, ...client }))).toBe(
      'session_revoked',
    );
  } finally {
    await rotor.close();
  }
}

describe("Rotor in an application's SQLite file", () => {
  it("with tablePrefix rotor_: migrates, signs in, refreshes, revokes; the app's users and sessions are untouched; the app's handle stays open", async () => {
    const path = join(dir, 'app.db');
    const database = new SqliteDatabase(path);
    database.pragma('journal_mode = WAL');
    for (const statement of APP_TABLES) database.exec(statement);
    const store = await createStore({ dialect: 'sqlite', database, tablePrefix: 'rotor_' });
    await exercise(store, `sqlite:${path}`);
    await store.close();
    // Rotor's tables, migration bookkeeping and indexes carry the prefix; nothing else was made.
    const names = database
      .prepare(
        "select name from sqlite_master where type in ('table', 'index') and name not like 'sqlite_%' order by name",
      )
      .pluck()
      .all() as string[];
    expect(names.filter((name) => !name.startsWith('rotor_'))).toEqual(['sessions', 'users']);
    expect(names).toContain('rotor_users');
    expect(names).toContain('rotor_sessions_user_id');
    expect(names).toContain('rotor_kysely_migration');
    expect(database.prepare('select * from users').all()).toEqual(APP_ROWS.users);
    expect(database.prepare('select * from sessions').all()).toEqual(APP_ROWS.sessions);
    expect(database.open).toBe(true);
    // Migrating again from code (as `rotor migrate` does) finds nothing to do.
    expect(await migrate({ url: `sqlite:${path}`, tablePrefix: 'rotor_' })).toEqual([]);
    database.close();
  });
});

const postgres = DIALECTS.find((d) => d.name === 'postgres')!;

describe.skipIf(!postgres.available)("Rotor in an application's PostgreSQL database", () => {
  const placements: { name: string; naming: Pick<CreateStoreOptions, 'schema' | 'tablePrefix'> }[] =
    [
      { name: 'tablePrefix rotor_', naming: { tablePrefix: 'rotor_' } },
      { name: 'schema rotor', naming: { schema: 'rotor' } },
    ];
  for (const { name, naming } of placements) {
    it(`with ${name}: migrates, signs in, refreshes, revokes; the app's users and sessions are untouched; the app's pool stays open`, async () => {
      const url = await newDatabaseUrl('postgres', dir);
      const pool = new pg.Pool({ connectionString: url, max: 5 });
      try {
        for (const statement of APP_TABLES) await pool.query(statement);
        const store = await createStore({ dialect: 'postgres', pool, ...naming });
        await exercise(store, url);
        await store.close();
        expect((await pool.query('select * from public.users')).rows).toEqual(APP_ROWS.users);
        expect((await pool.query('select * from public.sessions')).rows).toEqual(APP_ROWS.sessions);
        const schema = naming.schema ?? 'public';
        const prefix = naming.tablePrefix ?? '';
        const tables = (
          await pool.query(
            'select table_name from information_schema.tables where table_schema = $1 order by 1',
            [schema],
          )
        ).rows.map((row: { table_name: string }) => row.table_name);
        expect(tables).toContain(`${prefix}users`);
        expect(tables).toContain(`${prefix}kysely_migration`);
        expect(pool.ended).toBe(false);
        expect(await migrate({ url, ...naming })).toEqual([]);
      } finally {
        await pool.end();
      }
    });

    it(`with ${name}: a revocation by one instance reaches the other's listener (LISTEN/NOTIFY on Rotor's own channel)`, async () => {
      const url = await newDatabaseUrl('postgres', dir);
      const pool = new pg.Pool({ connectionString: url, max: 5 });
      const a = await openStore(url, { poolSize: 2, ...naming });
      const b = await createStore({ dialect: 'postgres', pool, ...naming });
      try {
        const heard: string[] = [];
        const watch = b.watchSessionState({
          session: (id) => heard.push(`s:${id}`),
          user: (id) => heard.push(`u:${id}`),
          all: () => {},
          keys: () => {},
        });
        await until(() => watch.current());
        const now = Date.now();
        await a.insertUser({
          id: 'u1',
          email: 'ada@example.com',
          name: null,
          password_hash: 'x',
          created_at: now,
          session_epoch: 0,
          email_verified_at: null,
        });
        await a.insertSession({
          id: 's1',
          user_id: 'u1',
          device_name: null,
          user_agent: null,
          ip: null,
          delivery: 'body',
          created_at: now,
          last_used_at: now,
          idle_expires_at: now + 60_000,
          max_expires_at: null,
          revoked_at: null,
          revoked_reason: null,
          client_id: null,
          dpop_jkt: null,
        });
        expect(await a.revokeSession('s1', now, 'admin')).toBe(true);
        await until(() => heard.includes('s:s1'));
        await watch.close();
      } finally {
        await a.close();
        await b.close();
        await pool.end();
      }
    });
  }
});

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
