// Row 5 of `npm run bench`: refresh latency with a thousand vs a million stored sessions, and the
// database size per million. The stores are filled with SQL (users, sessions and one live refresh
// token per session, random keys as Rotor writes them), then `rotor serve` runs on each and one
// client refreshes, rounds interleaved between the two sizes.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '@rotor/server';
import { sql } from 'kysely';
import { startRotor } from './lib/processes.js';
import { median } from './lib/stats.js';
import { signInUsers } from './lib/users.js';
import { load } from './refresh.js';

const SESSIONS_PER_USER = 4;
const DAY = 86_400_000;
const CHUNK = 50_000;

/** Fills a migrated store with `count` sessions of `count / 4` users, one live token each. */
async function seed(databaseUrl, count, dialect) {
  const store = await openStore(databaseUrl);
  const db = store.db;
  const now = Date.now();
  const users = Math.ceil(count / SESSIONS_PER_USER);
  // Random keys, as Rotor writes them: a B-tree filled in order would flatter the lookups.
  const random = dialect === 'sqlite' ? sql`lower(hex(randomblob(16)))` : sql`md5(random()::text)`;
  const longRandom =
    dialect === 'sqlite'
      ? sql`lower(hex(randomblob(32)))`
      : sql`md5(random()::text) || md5(random()::text)`;
  const series = (from, to) =>
    dialect === 'sqlite'
      ? sql`with recursive n(i) as (select ${sql.lit(from)} union all select i + 1 from n where i < ${sql.lit(to)})
          select i from n`
      : sql`select generate_series(${from}::int, ${to}::int) as i`;
  const userRows = (from, to) => sql`insert into users (id, email, name, password_hash, created_at)
    select 'seed-user-' || i, 'seed-' || i || '@example.test', null, 'not a hash', ${now}
    from (${series(from, to)}) as s`;
  const sessionRows = (from, to) => sql`select ${random} as id,
      'seed-user-' || (1 + (i - 1) / ${sql.lit(SESSIONS_PER_USER)}) as user_id, 'phone', 'bench',
      '127.0.0.1', 'body', ${now}, ${now}, ${now + 30 * DAY}, ${now + 90 * DAY}, null, null, null
    from (${series(from, to)}) as s`;
  const sessionColumns = sql`(id, user_id, device_name, user_agent, ip, delivery, created_at,
    last_used_at, idle_expires_at, max_expires_at, revoked_at, revoked_reason, client_id)`;
  const tokenRows = (sessions) => sql`select ${longRandom}, id, 'refresh', ${now},
    ${now + 30 * DAY}, null, null from ${sessions}`;
  try {
    if (dialect === 'sqlite') {
      // One transaction; the driver runs it synchronously, with no statement timeout.
      await db.transaction().execute(async (tx) => {
        await userRows(1, users).execute(tx);
        await sql`insert into sessions ${sessionColumns} ${sessionRows(1, count)}`.execute(tx);
        await sql`insert into user_tokens ${tokenRows(sql`sessions`)}`.execute(tx);
      });
    } else {
      // Rotor's pool bounds every query at a few seconds; chunks stay well inside that.
      for (let from = 1; from <= count; from += CHUNK) {
        const to = Math.min(count, from + CHUNK - 1);
        await userRows(
          Math.ceil(from / SESSIONS_PER_USER),
          Math.ceil(to / SESSIONS_PER_USER),
        ).execute(db);
        await sql`with s as (insert into sessions ${sessionColumns} ${sessionRows(from, to)}
            returning id)
          insert into user_tokens ${tokenRows(sql`s`)}`.execute(db);
      }
    }
    if (dialect === 'sqlite') {
      await sql`pragma wal_checkpoint(truncate)`.execute(db);
      return statSync(databaseUrl.slice('sqlite:'.length)).size;
    }
    await sql`analyze`.execute(db);
    // Rotor's tables with their indexes and TOAST, not the catalogs every database carries.
    const { rows } = await sql`select sum(pg_total_relation_size(t)) as size
      from unnest(array['users', 'sessions', 'user_tokens']) as t`.execute(db);
    return Number(rows[0].size);
  } finally {
    await store.close();
  }
}

/** A new database on the bench's PostgreSQL server. */
async function createPostgresDatabase(serverUrl, name) {
  const store = await openStore(serverUrl, { migrate: false });
  try {
    await sql`create database ${sql.id(name)}`.execute(store.db);
  } finally {
    await store.close();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * @param {{ postgresUrl?: string, small?: number, large?: number, rounds?: number,
 *   seconds?: number }} options
 */
export async function benchScale({
  postgresUrl,
  small = 1_000,
  large = 1_000_000,
  rounds = 3,
  seconds = 3,
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-bench-scale-'));
  const rows = [];
  try {
    const dialects = [['SQLite', 'sqlite']];
    if (postgresUrl) dialects.push(['PostgreSQL', 'postgres']);
    for (const [label, dialect] of dialects) {
      const sizes = {};
      const servers = [];
      try {
        for (const count of [small, large]) {
          const url =
            dialect === 'sqlite'
              ? `sqlite:${join(dir, `scale-${count}.db`)}`
              : await createPostgresDatabase(postgresUrl, `rotor_scale_${count}`);
          const seededAt = performance.now();
          const bytes = await seed(url, count, dialect);
          // Limits off: one client chains one session's tokens, faster than its limit allows.
          const server = await startRotor(url, { ROTOR_RATE_LIMIT: 'off' });
          servers.push(server);
          const sessions = await signInUsers(server.url, 1, `scale-${count}`);
          await load(server.url, sessions, 1); // warm-up
          sizes[count] = {
            server,
            sessions,
            bytes,
            seedSeconds: (performance.now() - seededAt) / 1000,
            p50: [],
            perSecond: [],
          };
        }
        for (let round = 0; round < rounds; round += 1) {
          for (const entry of Object.values(sizes)) {
            const result = await load(entry.server.url, entry.sessions, seconds);
            entry.p50.push(result.p50);
            entry.perSecond.push(result.perSecond);
          }
        }
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
      const base = median(sizes[small].p50);
      // What a million more sessions cost on disk: the difference between the two stores, so the
      // fixed part (schema, keys, the bench users) drops out.
      const mibPerMillion =
        (sizes[large].bytes - sizes[small].bytes) / 2 ** 20 / ((large - small) / 1_000_000);
      for (const [count, entry] of Object.entries(sizes)) {
        rows.push({
          name: `Rotor refresh, ${label}, ${Number(count).toLocaleString('en')} sessions`,
          p50: median(entry.p50),
          ratio: median(entry.p50) / base,
          perSecond: median(entry.perSecond),
          mibPerMillion: Number(count) === large ? mibPerMillion : undefined,
          seedSeconds: entry.seedSeconds,
        });
      }
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
