import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  databaseLimitStore,
  ManualClock,
  MemoryLimitStore,
  openStore,
  RateLimitedError,
  RateLimiter,
  RedisLimitStore,
  type LimitStore,
  type Store,
} from '@rotor/server';
import { findRedisServer, startRedis, type RedisServer } from '@rotor/testkit';
import { DIALECTS, newDatabaseUrl, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir();
const REDIS = findRedisServer();
let redis: RedisServer | undefined;
beforeAll(async () => {
  if (REDIS) redis = await startRedis(REDIS);
});
afterAll(() => {
  redis?.stop();
  cleanup();
});

const RULE = { name: 'contract', limit: 5, windowMs: 60_000 };

/** Two stores over one shared backend, as two instances see it, and how to close them. */
interface Backend {
  name: string;
  available: () => boolean;
  open(): Promise<{ stores: [LimitStore, LimitStore]; close(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'memory (one process)',
    available: () => true,
    async open() {
      const store = new MemoryLimitStore();
      return { stores: [store, store], close: async () => {} };
    },
  },
  ...DIALECTS.map((dialect): Backend => ({
    name: dialect.name,
    available: () => dialect.available,
    async open() {
      const url = await newDatabaseUrl(dialect.name, dir);
      const first: Store = await openStore(url, { poolSize: 10 });
      // Two SQLite connections in one process would block each other's synchronous driver
      // (better-sqlite3 waits for the lock on the thread the other needs to release it): one
      // store per process, as Rotor runs. Two SQLite processes: concurrent-guessing.test.ts.
      const second: Store =
        dialect.name === 'sqlite' ? first : await openStore(url, { poolSize: 10 });
      return {
        stores: [databaseLimitStore(first), databaseLimitStore(second)],
        close: async () => {
          await first.close();
          if (second !== first) await second.close();
        },
      };
    },
  })),
  {
    name: 'redis',
    available: () => REDIS !== undefined,
    async open() {
      const first = new RedisLimitStore(redis!.url);
      const second = new RedisLimitStore(redis!.url);
      return {
        stores: [first, second],
        close: async () => {
          await first.close();
          await second.close();
        },
      };
    },
  },
];

/**
 * The contract every limit store keeps (limits/limiter.ts, `LimitStore`): an update is atomic per
 * key across every process that shares the store, so a budget of N admits exactly N of any number
 * of simultaneous reservations (issue 13, item 1).
 */
for (const backend of backends) {
  describe.skipIf(!backend.available())(`limit store contract [${backend.name}]`, () => {
    it('40 simultaneous reservations through two instances: exactly the budget is admitted, the rest refused with a true Retry-After', async () => {
      const { stores, close } = await backend.open();
      try {
        const clock = new ManualClock(Date.UTC(2030, 0, 1));
        const limiters = stores.map((store) => new RateLimiter(store, clock));
        const subject = `subject-${Math.random()}`;
        const outcomes = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            limiters[i % 2]!.reserve(RULE, subject).then(
              () => 'admitted',
              (error: unknown) =>
                error instanceof RateLimitedError ? error.retryAfterSeconds : 'error',
            ),
          ),
        );
        expect(outcomes.filter((o) => o === 'admitted')).toHaveLength(5);
        // Refused until the first admitted attempt leaves the one-minute window.
        expect(outcomes.filter((o) => o === 60)).toHaveLength(35);
      } finally {
        await close();
      }
    });

    it('a released reservation gives its place back, on the other instance too', async () => {
      const { stores, close } = await backend.open();
      try {
        const clock = new ManualClock(Date.UTC(2030, 0, 1));
        const [a, b] = stores.map((store) => new RateLimiter(store, clock));
        const subject = `subject-${Math.random()}`;
        const held = [];
        for (let i = 0; i < 5; i += 1) held.push(await a!.reserve(RULE, subject));
        await held[0]!.release();
        await b!.reserve(RULE, subject);
        await expect(b!.reserve(RULE, subject)).rejects.toBeInstanceOf(RateLimitedError);
        clock.advance(RULE.windowMs);
        await a!.reserve(RULE, subject);
      } finally {
        await close();
      }
    });
  });
}
