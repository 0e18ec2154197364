import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  databaseLimitStore,
  MemoryLimitStore,
  openStore,
  RedisLimitStore,
  SqlLimitStore,
  type KyselyStore,
  type OpenStoreOptions,
} from '@rotor/server';
import { findRedisServer, startRedis, type RedisServer } from '@rotor/testkit';
import { DIALECTS, newDatabaseUrl, tempDir } from './helpers.js';
import { limitStoreContract, type LimitStorePair } from './limit-store-contract.js';

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

limitStoreContract('memory (one process)', async () => {
  const store = new MemoryLimitStore();
  return { stores: [store, store], close: async () => {} };
});

/** Two instances on one new database, each with its own {@link SqlLimitStore}. */
async function sqlPair(
  dialect: 'sqlite' | 'postgres',
  options: OpenStoreOptions = {},
): Promise<LimitStorePair> {
  const url = await newDatabaseUrl(dialect, dir);
  const first: KyselyStore = await openStore(url, { poolSize: 10, ...options });
  // Two SQLite connections in one process would block each other's synchronous driver
  // (better-sqlite3 waits for the lock on the thread the other needs to release it): one
  // store per process, as Rotor runs. Two SQLite processes: concurrent-guessing.test.ts.
  const second: KyselyStore =
    dialect === 'sqlite' ? first : await openStore(url, { poolSize: 10, ...options });
  return {
    stores: [new SqlLimitStore(first.db), new SqlLimitStore(second.db)],
    close: async () => {
      await first.close();
      if (second !== first) await second.close();
    },
  };
}

for (const dialect of DIALECTS) {
  limitStoreContract(`sql, ${dialect.name}`, () => sqlPair(dialect.name), dialect.available);
  limitStoreContract(
    `sql, ${dialect.name}, tables prefixed rotor_`,
    () => sqlPair(dialect.name, { tablePrefix: 'rotor_' }),
    dialect.available,
  );
}
limitStoreContract(
  'sql, postgres, schema rotor',
  () => sqlPair('postgres', { schema: 'rotor' }),
  DIALECTS[1]!.available,
);

limitStoreContract(
  'redis',
  async () => {
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
  REDIS !== undefined,
);

describe('the database limit store through the Store', () => {
  it('databaseLimitStore(store) writes the same rows as SqlLimitStore, and pruneRateLimits deletes them once expired', async () => {
    const store = await openStore(await newDatabaseUrl('sqlite', dir));
    try {
      await databaseLimitStore(store).update('k', () => ({ events: [1], expiresAt: 10 }), 1);
      let seen;
      await new SqlLimitStore(store.db).update('k', (state) => ((seen = state), state!));
      expect(seen).toEqual({ events: [1], expiresAt: 10 });
      expect(await store.pruneRateLimits(5)).toBe(0);
      expect(await store.pruneRateLimits(11)).toBe(1);
    } finally {
      await store.close();
    }
  });
});
