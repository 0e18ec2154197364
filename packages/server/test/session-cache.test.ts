import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  createRotor,
  loadConfig,
  ManualClock,
  openStore,
  type KyselyStore,
  type Rotor,
} from '@rotor/server';
import { codeOf, DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const client = { ip: '127.0.0.1', userAgent: 'vitest' };
const MINUTE = 60_000;

/** The real store, with its session reads counted: how a test sees whether the cache answered. */
function countingReads(store: KyselyStore) {
  const counter = { reads: 0 };
  const proxy = new Proxy(store, {
    get(target, property) {
      if (property === 'findSessionWithUser') {
        return (id: string) => {
          counter.reads += 1;
          return target.findSessionWithUser(id);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: proxy, counter };
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`session-state cache [${dialect.name}]`, () => {
    const opened: { close(): Promise<void> }[] = [];
    afterEach(async () => {
      for (const item of opened.splice(0).reverse()) await item.close();
    });

    /** A Rotor on a new database over a counting store, and a second store on the same database. */
    async function setUp(env: Record<string, string> = {}) {
      const url = await newDatabaseUrl(dialect.name, dir);
      const store = await openStore(url);
      const other = await openStore(url, { migrate: false });
      opened.push(store, other);
      const counted = countingReads(store);
      const clock = new ManualClock(Date.UTC(2030, 0, 1));
      const rotor: Rotor = await createRotor(loadConfig({ ROTOR_DATABASE_URL: url, ...env }), {
        store: counted.store,
        clock,
      });
      opened.push(rotor);
      await rotor.register({ email: 'ada@example.com', password: PASSWORD });
      const grant = await rotor.login({
        email: 'ada@example.com',
        password: PASSWORD,
        deviceName: 'laptop',
        delivery: 'body',
        ...client,
      });
      // The listener of PostgreSQL connects in the background; the first checks may all read.
      await expect
        .poll(async () => {
          const before = counted.counter.reads;
          await rotor.authenticate(grant.accessToken);
          await rotor.authenticate(grant.accessToken);
          return counted.counter.reads - before;
        })
        .toBeLessThan(2);
      return { url, rotor, clock, other, grant, counter: counted.counter };
    }

    it('answers repeated checks from the cache, and a revocation here is refused on the next check', async () => {
      const { rotor, grant, counter } = await setUp();
      const before = counter.reads;
      for (let i = 0; i < 5; i += 1) {
        const principal = await rotor.authenticate(grant.accessToken);
        expect(principal.session.id).toBe(grant.session.id);
        expect(principal.user.email).toBe('ada@example.com');
      }
      expect(counter.reads).toBe(before);
      expect(await rotor.logoutSession(grant.session.id)).toBe(true);
      expect(await codeOf(rotor.authenticate(grant.accessToken))).toBe('session_revoked');
    });

    it('sign-out everywhere here is refused on the next check of every session', async () => {
      const { rotor, grant } = await setUp();
      expect(await rotor.logoutAll(grant.user.id)).toBe(1);
      expect(await codeOf(rotor.authenticate(grant.accessToken))).toBe('session_revoked');
    });

    it('a revocation through another connection (the CLI, another instance) reaches the cache', async () => {
      const { rotor, grant, other, clock } = await setUp();
      expect(await other.revokeSession(grant.session.id, clock.now(), 'admin')).toBe(true);
      if (dialect.name === 'sqlite') {
        // data_version is read before every cache hit: the very next check sees it.
        expect(await codeOf(rotor.authenticate(grant.accessToken))).toBe('session_revoked');
      } else {
        // NOTIFY arrives on its own connection, as fast as PostgreSQL sends it.
        await expect
          .poll(() => codeOf(rotor.authenticate(grant.accessToken)), { interval: 5 })
          .toBe('session_revoked');
      }
    });

    it('a refresh re-reads the session: the next check shows the new last use', async () => {
      const { rotor, grant, clock } = await setUp();
      clock.advance(5 * MINUTE);
      const next = await rotor.refresh({ refreshToken: grant.refreshToken, ...client });
      const principal = await rotor.authenticate(next.accessToken);
      expect(principal.session.last_used_at).toBe(clock.now());
    });

    it('a refresh on another instance extends the session there; this cache re-reads before calling it expired', async () => {
      const env = { ROTOR_ACCESS_TTL: '15m', ROTOR_REFRESH_TTL: '20m' };
      const { url, rotor, grant, clock } = await setUp(env);
      const elsewhere = await createRotor(loadConfig({ ROTOR_DATABASE_URL: url, ...env }), {
        clock,
      });
      opened.push(elsewhere);
      const idleTtl = grant.refreshExpiresAt * 1000 - clock.now();
      clock.advance(idleTtl / 2);
      const next = await elsewhere.refresh({ refreshToken: grant.refreshToken, ...client });
      // Past the expiry this instance cached, inside the one the refresh set.
      clock.advance(idleTtl / 2 + 1);
      const principal = await rotor.authenticate(next.accessToken);
      expect(principal.session.idle_expires_at).toBe(next.refreshExpiresAt * 1000);
    });

    it('expiry is judged by the clock on every check, not remembered', async () => {
      const { rotor, grant, clock } = await setUp();
      clock.set(grant.refreshExpiresAt * 1000 + 1);
      // The access token itself would be expired too; its check is not what this test is about.
      expect(await codeOf(rotor.authenticate(grant.accessToken))).toMatch(/expired/);
    });

    it.skipIf(dialect.name !== 'postgres')(
      'while the LISTEN connection is down nothing is served from the cache; it reconnects',
      async () => {
        const { url, rotor, grant, counter, other, clock } = await setUp();
        const admin = new pg.Client({ connectionString: url });
        await admin.connect();
        try {
          await admin.query(
            `select pg_terminate_backend(pid) from pg_stat_activity
             where application_name = 'rotor-listen' and datname = current_database()`,
          );
        } finally {
          await admin.end();
        }
        const readsPerTwoChecks = async () => {
          const before = counter.reads;
          await rotor.authenticate(grant.accessToken);
          await rotor.authenticate(grant.accessToken);
          return counter.reads - before;
        };
        await expect.poll(readsPerTwoChecks, { interval: 5 }).toBe(2);
        await expect.poll(readsPerTwoChecks, { timeout: 5_000, interval: 50 }).toBe(0);
        // The new connection listens: a revocation elsewhere still reaches the cache.
        await other.revokeSession(grant.session.id, clock.now(), 'admin');
        await expect
          .poll(() => codeOf(rotor.authenticate(grant.accessToken)), { interval: 5 })
          .toBe('session_revoked');
      },
    );
  });
}
