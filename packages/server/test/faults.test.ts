import SqliteDatabase from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig, openStore } from '@rotor/server';
import { DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from './helpers.js';
import { findPostgresBin, startPostgres, type PostgresServer } from '@rotor/testkit';
import { call, startRotorProcess, type RotorProcess } from './rotor-process.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Client {
  refreshToken: string;
  accessToken: string;
  sessionId: string;
  /** Every refresh token this client has rotated away. */
  history: string[];
}

/** Registers a user and signs in `count` devices (body delivery). */
async function signInClients(base: string, count: number): Promise<Client[]> {
  const email = `load-${Math.random().toString(36).slice(2)}@example.com`;
  expect(
    (await call(base, 'POST', '/auth/register', { body: { email, password: PASSWORD } })).status,
  ).toBe(201);
  return Promise.all(
    Array.from({ length: count }, async () => {
      const r = await call(base, 'POST', '/auth/login', {
        body: { email, password: PASSWORD },
        headers: { 'token-delivery': 'body' },
      });
      expect(r.status).toBe(200);
      return {
        refreshToken: r.body.refreshToken as string,
        accessToken: r.body.accessToken as string,
        sessionId: r.body.sessionId as string,
        history: [],
      };
    }),
  );
}

interface LoadReport {
  ok: number;
  /** Status (or 'network') → count, for everything that was not a 200. */
  failures: Record<string, number>;
  errorCodes: Record<string, number>;
  maxMs: number;
}

/**
 * Each client refreshes in a loop until `until()` is true, keeping the newest token it got in a
 * `200`, and checks its access token on every other round. Network errors (a killed server) and
 * `503`s are counted and retried with the token the client still holds.
 */
async function runLoad(
  base: () => string,
  clients: Client[],
  until: () => boolean,
): Promise<LoadReport> {
  const report: LoadReport = { ok: 0, failures: {}, errorCodes: {}, maxMs: 0 };
  const note = (key: string, code?: unknown) => {
    report.failures[key] = (report.failures[key] ?? 0) + 1;
    if (typeof code === 'string') report.errorCodes[code] = (report.errorCodes[code] ?? 0) + 1;
  };
  await Promise.all(
    clients.map(async (client) => {
      for (let round = 0; !until(); round += 1) {
        try {
          if (round % 2 === 1) {
            const me = await call(base(), 'GET', '/auth/me', {
              token: client.accessToken,
              timeoutMs: 10_000,
            });
            report.maxMs = Math.max(report.maxMs, me.ms);
            if (me.status !== 200) note(String(me.status), me.body.error);
            continue;
          }
          const r = await call(base(), 'POST', '/auth/refresh', {
            body: { refreshToken: client.refreshToken },
            timeoutMs: 10_000,
          });
          report.maxMs = Math.max(report.maxMs, r.ms);
          if (r.status === 200) {
            report.ok += 1;
            if (r.body.refreshToken !== client.refreshToken)
              client.history.push(client.refreshToken);
            client.refreshToken = r.body.refreshToken as string;
            client.accessToken = r.body.accessToken as string;
          } else {
            note(String(r.status), r.body.error);
            await sleep(50);
          }
        } catch {
          note('network');
          await sleep(50);
        }
      }
    }),
  );
  return report;
}

/**
 * What "nothing was lost" means, read straight from the database and then over HTTP: no session was
 * revoked, no session has more than one live refresh token (invariant 1), and the token every
 * client last received in a `200` still works (the client keeps the successor).
 */
async function expectNothingLost(
  databaseUrl: string,
  base: string,
  clients: Client[],
): Promise<void> {
  const store = await openStore(databaseUrl, { migrate: false });
  try {
    const revoked = await store.db
      .selectFrom('sessions')
      .select('id')
      .where('revoked_at', 'is not', null)
      .execute();
    expect(revoked).toEqual([]);
    const live = await store.db
      .selectFrom('user_tokens')
      .select(['session_id'])
      .where('rotated_at', 'is', null)
      .where('expires_at', '>', Date.now())
      .execute();
    const perSession = new Map<string, number>();
    for (const row of live)
      perSession.set(row.session_id, (perSession.get(row.session_id) ?? 0) + 1);
    expect(Math.max(...perSession.values())).toBe(1);
  } finally {
    await store.close();
  }
  for (const client of clients) {
    const r = await call(base, 'POST', '/auth/refresh', {
      body: { refreshToken: client.refreshToken },
    });
    expect(r.status).toBe(200);
    client.refreshToken = r.body.refreshToken as string;
  }
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`[${dialect.name}] kill -9 during a refresh load`, () => {
    it('loses nothing: one live token per session, every 200 holds a working token, old tokens are re-use', async () => {
      const GRACE = 5;
      const env = {
        ROTOR_DATABASE_URL: await newDatabaseUrl(dialect.name, dir),
        ROTOR_REFRESH_GRACE: `${GRACE}s`,
        ROTOR_LOG_LEVEL: 'warn',
        // A load loop, as a test setup is: the outage is under test here, not the limits.
        ROTOR_RATE_LIMIT: 'off',
      };
      let server: RotorProcess = await startRotorProcess(env);
      const port = server.port;
      const clients = await signInClients(server.url, 16);
      let stop = false;
      const load = runLoad(
        () => server.url,
        clients,
        () => stop,
      );

      await sleep(700);
      await server.kill(); // mid-load: requests in flight are cut, whatever state they were in
      server = await startRotorProcess(env, port);
      await sleep(1_000);
      stop = true;
      const report = await load;
      console.log(
        `[${dialect.name}] kill -9: ${report.ok} refreshes answered 200, failures ${JSON.stringify(report.failures)}`,
      );

      try {
        expect(report.ok).toBeGreaterThan(50);
        // Only the outage itself failed: no 401 (nobody was logged out), no 500.
        expect(Object.keys(report.failures).filter((k) => k !== 'network')).toEqual([]);
        await expectNothingLost(env.ROTOR_DATABASE_URL, server.url, clients);
        // Outside the grace window, a rotated token is re-use, on every client.
        await sleep(GRACE * 1000 + 300);
        for (const client of clients.slice(0, 4)) {
          const r = await call(server.url, 'POST', '/auth/refresh', {
            body: { refreshToken: client.history[0] },
          });
          expect(r.body.error).toBe('refresh_token_reused');
        }
      } finally {
        await server.stop();
      }
    }, 60_000);
  });
}

const postgresBin = findPostgresBin();
describe.skipIf(!postgresBin || !DIALECTS[1]!.available)(
  'PostgreSQL stopped for 3 s during load',
  () => {
    let pg: PostgresServer | undefined;
    let app: FastifyInstance | undefined;
    afterAll(async () => {
      await app?.close();
      pg?.destroy();
    });

    it('answers 503 unavailable within a bounded time, /readyz says 503, recovers, revokes nothing', async () => {
      pg = await startPostgres(postgresBin!);
      // A load loop: the outage is under test here, not the limits.
      const config = loadConfig({ ROTOR_DATABASE_URL: pg.url, ROTOR_RATE_LIMIT: 'off' });
      app = await createServer(config, { logger: false });
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const clients = await signInClients(base, 12);

      let stop = false;
      const load = runLoad(
        () => base,
        clients,
        () => stop,
      );
      await sleep(500);
      const outageStarted = performance.now();
      pg.stop('fast');
      await sleep(500);
      const readyDuring = await call(base, 'GET', '/readyz');
      await sleep(2_500);
      pg.start();
      const outageSeconds = (performance.now() - outageStarted) / 1000;

      let recoveredAfter = 0;
      for (
        const started = performance.now();
        (await call(base, 'GET', '/readyz')).status !== 200;
      ) {
        expect(performance.now() - started).toBeLessThan(15_000);
        await sleep(100);
        recoveredAfter = (performance.now() - started) / 1000;
      }
      await sleep(1_000);
      stop = true;
      const report = await load;
      console.log(
        `[postgres] outage ${outageSeconds.toFixed(1)} s: ${report.ok} refreshes answered 200, ` +
          `failures ${JSON.stringify(report.failures)} ${JSON.stringify(report.errorCodes)}, slowest ${Math.round(report.maxMs)} ms, ` +
          `ready again ${recoveredAfter.toFixed(1)} s after restart`,
      );

      expect(readyDuring.status).toBe(503);
      expect(readyDuring.body.error).toBe('unavailable');
      expect(report.failures['503']).toBeGreaterThan(0);
      expect(Object.keys(report.failures).filter((k) => k !== '503')).toEqual([]);
      expect(Object.keys(report.errorCodes)).toEqual(['unavailable']);
      expect(report.maxMs).toBeLessThan(8_000);
      await expectNothingLost(pg.url, base, clients);
    }, 90_000);
  },
);

describe('SQLite locked by another process for 2.5 s during load', () => {
  it('answers 503 unavailable within a bounded time, /readyz says 503, recovers, revokes nothing', async () => {
    const url = await newDatabaseUrl('sqlite', dir);
    const server = await startRotorProcess({
      ROTOR_DATABASE_URL: url,
      ROTOR_LOG_LEVEL: 'warn',
      ROTOR_RATE_LIMIT: 'off', // a load loop: the lock is under test here, not the limits
    });
    try {
      const clients = await signInClients(server.url, 8);
      let stop = false;
      const load = runLoad(
        () => server.url,
        clients,
        () => stop,
      );
      await sleep(300);
      // Another process (a backup script, a stuck admin shell) takes the write lock and keeps it.
      const intruder = new SqliteDatabase(url.slice('sqlite:'.length));
      intruder.exec('BEGIN EXCLUSIVE');
      await sleep(300);
      const readyDuring = await call(server.url, 'GET', '/readyz');
      await sleep(2_200);
      intruder.exec('COMMIT');
      intruder.close();
      await sleep(800);
      stop = true;
      const report = await load;
      console.log(
        `[sqlite] lock 2.5 s: ${report.ok} refreshes answered 200, failures ${JSON.stringify(report.failures)}, slowest ${Math.round(report.maxMs)} ms`,
      );

      expect(readyDuring.status).toBe(503);
      expect(report.failures['503']).toBeGreaterThan(0);
      expect(Object.keys(report.failures).filter((k) => k !== '503')).toEqual([]);
      expect(Object.keys(report.errorCodes)).toEqual(['unavailable']);
      expect(report.maxMs).toBeLessThan(5_000);
      expect((await call(server.url, 'GET', '/readyz')).status).toBe(200);
      await expectNothingLost(url, server.url, clients);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
