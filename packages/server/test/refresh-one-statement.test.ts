// Issue 19: on PostgreSQL the common refresh (a live token of a live session that did not move) is
// one round trip, migration 0013's function; every other case is decided by the full transaction,
// with the same answers. The round trips are counted on the pool's own connections.
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createRotor,
  createStore,
  loadConfig,
  ManualClock,
  type KyselyStore,
  type Rotor,
} from '@rotor/server';
import { codeOf, newDatabaseUrl, PASSWORD, POSTGRES_URL, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const CLIENT = { ip: '203.0.113.1', userAgent: 'vitest' };

/** A pool whose clients count every query they send (BEGIN and COMMIT included). */
function countingPool(url: string): { pool: pg.Pool; queries: () => number } {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  let count = 0;
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
      const first = args[0] as string | { text?: string } | undefined;
      const sql = typeof first === 'string' ? first : (first?.text ?? '');
      // The key ring's reload (every few minutes of the clock) is not part of any refresh.
      if (!/"signing_keys"/.test(sql)) count += 1;
      return query(...args);
    };
  });
  return { pool, queries: () => count };
}

/** A Rotor on `url` over a counting pool, the way an application embeds it (`createStore`). */
async function rotorOn(
  url: string,
  naming: { schema?: string; tablePrefix?: string } = {},
  clock?: ManualClock,
) {
  const { pool, queries } = countingPool(url);
  const store: KyselyStore = await createStore({ dialect: 'postgres', pool, ...naming });
  const rotor = await createRotor(loadConfig({ ROTOR_DATABASE_URL: url }), {
    store,
    ...(clock && { clock }),
  });
  return {
    rotor,
    queries,
    /** Runs `fn` and says how many queries it sent. */
    async counted<T>(fn: () => Promise<T>): Promise<{ value: T; queries: number }> {
      // Work a sign-up left running (its verification mail's token) is not the refresh's.
      await rotor.whenIdle();
      const before = queries();
      const value = await fn();
      return { value, queries: queries() - before };
    },
    async close() {
      await rotor.close();
      await pool.end();
    },
  };
}

async function signIn(rotor: Rotor, email: string) {
  await rotor.register({ email, password: PASSWORD });
  return rotor.login({ email, password: PASSWORD, deviceName: null, delivery: 'body', ...CLIENT });
}

describe.skipIf(POSTGRES_URL === '')('refresh in one statement (PostgreSQL, issue 19)', () => {
  for (const naming of [{}, { schema: 'auth', tablePrefix: 'rotor_' }]) {
    it(`a live token of this process's issue is rotated in one round trip, chain after chain (${JSON.stringify(naming)})`, async () => {
      const url = await newDatabaseUrl('postgres', dir);
      if ('schema' in naming) {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query('create schema auth');
        await client.end();
      }
      const a = await rotorOn(url, naming);
      try {
        let grant = await signIn(a.rotor, 'ada@example.com');
        for (let i = 0; i < 3; i += 1) {
          const { value, queries } = await a.counted(() =>
            a.rotor.refresh({ refreshToken: grant.refreshToken, ...CLIENT }),
          );
          expect(queries).toBe(1);
          expect(value.refreshToken).not.toBe(grant.refreshToken);
          // The predecessor is rotated: outside the grace window it is re-use; inside, the tip.
          grant = value;
        }
        const principal = await a.rotor.authenticate(grant.accessToken);
        expect(principal.user.email).toBe('ada@example.com');
        const sessions = await a.rotor.listSessions(principal.user.id);
        expect(sessions.items).toHaveLength(1);
      } finally {
        await a.close();
      }
    });
  }

  it('a token issued by another instance takes the transaction once, then one statement', async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const a = await rotorOn(url);
    const b = await rotorOn(url);
    try {
      const grant = await signIn(a.rotor, 'bob@example.com');
      const first = await b.counted(() =>
        b.rotor.refresh({ refreshToken: grant.refreshToken, ...CLIENT }),
      );
      expect(first.queries).toBeGreaterThan(1);
      const second = await b.counted(() =>
        b.rotor.refresh({ refreshToken: first.value.refreshToken, ...CLIENT }),
      );
      expect(second.queries).toBe(1);
      // A knows none of B's successors: the transaction again, with the same rules.
      const third = await a.counted(() =>
        a.rotor.refresh({ refreshToken: second.value.refreshToken, ...CLIENT }),
      );
      expect(third.queries).toBeGreaterThan(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('50 racers on two instances, the statement on one and the transaction on the other: one rotation, one live token, every racer answered with it', async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const a = await rotorOn(url);
    const b = await rotorOn(url);
    try {
      const grant = await signIn(a.rotor, 'race@example.com');
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (i % 2 === 0 ? a : b).rotor.refresh({ refreshToken: grant.refreshToken, ...CLIENT }),
        ),
      );
      // Every racer is inside the grace window of the one rotation: all get its successor.
      expect(new Set(answers.map((g) => g.refreshToken)).size).toBe(1);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const { rows } = await client.query<{ live: string; all: string }>(
        "select count(*) filter (where rotated_at is null) as live, count(*) as all from user_tokens where type = 'refresh'",
      );
      await client.end();
      expect(Number(rows[0]!.live)).toBe(1);
      expect(Number(rows[0]!.all)).toBe(2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a session revoked on another instance is refused through the statement, nothing rotated', async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const a = await rotorOn(url);
    const b = await rotorOn(url);
    try {
      const grant = await signIn(a.rotor, 'cy@example.com');
      const principal = await a.rotor.authenticate(grant.accessToken);
      expect(await b.rotor.logoutSession(principal.session.id)).toBe(true);
      expect(await codeOf(a.rotor.refresh({ refreshToken: grant.refreshToken, ...CLIENT }))).toBe(
        'session_revoked',
      );
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const { rows } = await client.query<{ live: string }>(
        'select count(*) as live from user_tokens where rotated_at is null',
      );
      await client.end();
      expect(Number(rows[0]!.live)).toBe(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a session that moved (another address) takes the transaction and records the move', async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const a = await rotorOn(url);
    try {
      const grant = await signIn(a.rotor, 'dee@example.com');
      const moved = { ip: '198.51.100.7', userAgent: 'vitest' };
      const { value, queries } = await a.counted(() =>
        a.rotor.refresh({ refreshToken: grant.refreshToken, ...moved }),
      );
      expect(queries).toBeGreaterThan(1);
      const principal = await a.rotor.authenticate(value.accessToken);
      const events = await a.rotor.listEvents(principal.user.id);
      expect(events.items.map((e) => e.type)).toContain('refresh');
      expect(events.items.find((e) => e.type === 'refresh')?.ip).toBe(moved.ip);
      // From the new address on, the statement again.
      const next = await a.counted(() =>
        a.rotor.refresh({ refreshToken: value.refreshToken, ...moved }),
      );
      expect(next.queries).toBe(1);
    } finally {
      await a.close();
    }
  });

  it('the per-session budget is admitted before the statement: the 31st refresh in a minute is refused and its token still works later', async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const clock = new ManualClock(Date.now());
    const a = await rotorOn(url, {}, clock);
    try {
      let grant = await signIn(a.rotor, 'eve@example.com');
      for (let i = 0; i < 30; i += 1) {
        grant = await a.rotor.refresh({ refreshToken: grant.refreshToken, ...CLIENT });
        clock.advance(100);
      }
      expect(await codeOf(a.rotor.refresh({ refreshToken: grant.refreshToken, ...CLIENT }))).toBe(
        'rate_limited',
      );
      clock.advance(61_000);
      const { queries } = await a.counted(() =>
        a.rotor.refresh({ refreshToken: grant.refreshToken, ...CLIENT }),
      );
      // The refused attempt gave back nothing it had not taken: the token was never rotated, and
      // the statement still knows it.
      expect(queries).toBe(1);
    } finally {
      await a.close();
    }
  });

  it('an expired token and a maximum lifetime run out are told apart by the transaction, as before', async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const clock = new ManualClock(Date.now());
    const { pool } = countingPool(url);
    const store = await createStore({ dialect: 'postgres', pool });
    const rotor = await createRotor(
      loadConfig({
        ROTOR_DATABASE_URL: url,
        ROTOR_REFRESH_TTL: '1h',
        ROTOR_SESSION_MAX_AGE: '2h',
      }),
      { store, clock },
    );
    try {
      const idle = await signIn(rotor, 'fay@example.com');
      clock.advance(3_600_001);
      const error = await rotor
        .refresh({ refreshToken: idle.refreshToken, ...CLIENT })
        .catch((e: unknown) => e as { code: string; details?: { reason?: string } });
      expect(error).toMatchObject({ code: 'session_expired', details: { reason: 'idle' } });

      let grant = await rotor.login({
        email: 'fay@example.com',
        password: PASSWORD,
        deviceName: null,
        delivery: 'body',
        ...CLIENT,
      });
      for (let i = 0; i < 3; i += 1) {
        clock.advance(30 * 60_000);
        grant = await rotor.refresh({ refreshToken: grant.refreshToken, ...CLIENT });
      }
      // Past two hours after the login, while the last successor's idle hour still runs.
      clock.advance(30 * 60_000 + 1_000);
      const ended = await rotor
        .refresh({ refreshToken: grant.refreshToken, ...CLIENT })
        .catch((e: unknown) => e as { code: string; details?: { reason?: string } });
      expect(ended).toMatchObject({ code: 'session_expired', details: { reason: 'max_age' } });
    } finally {
      await rotor.close();
      await pool.end();
    }
  });
});
