import { Redis } from 'ioredis';
import type { LimitStore } from './limiter.js';
import type { LimitState } from './window.js';

/** Every state expires on its own once its window and block are over (limits/rules.ts). */
const TTL_MS = 2 * 60 * 60 * 1000;
const KEY_PREFIX = 'rotor:limit:';
const RETRIES = 10;

/**
 * Limit states in Redis (`ROTOR_REDIS_URL`), shared by every instance that points at it. An update
 * is optimistic: WATCH the key, read, compute, and write in MULTI/EXEC, which Redis refuses if
 * another client wrote the key in between; then try again. WATCH belongs to the connection, so this
 * process runs its updates one at a time on it (logins and sign-ups, not the hot path).
 */
export class RedisLimitStore implements LimitStore {
  readonly #redis: Redis;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(url: string) {
    this.#redis = new Redis(url, {
      lazyConnect: false,
      maxRetriesPerRequest: 2,
      connectTimeout: 3_000,
      commandTimeout: 3_000,
      enableOfflineQueue: true,
    });
    // Connection errors surface on the commands that fail (503); without a listener ioredis would
    // also print them.
    this.#redis.on('error', () => {});
  }

  async read(key: string): Promise<LimitState | undefined> {
    const value = await this.#redis.get(KEY_PREFIX + key);
    return value === null ? undefined : (JSON.parse(value) as LimitState);
  }

  update(key: string, change: (state: LimitState | undefined) => LimitState): Promise<void> {
    const run = this.#queue.then(() => this.#update(KEY_PREFIX + key, change));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #update(key: string, change: (state: LimitState | undefined) => LimitState) {
    for (let attempt = 0; attempt < RETRIES; attempt += 1) {
      await this.#redis.watch(key);
      const value = await this.#redis.get(key);
      const next = change(value === null ? undefined : (JSON.parse(value) as LimitState));
      const result = await this.#redis.multi().set(key, JSON.stringify(next), 'PX', TTL_MS).exec();
      if (result !== null) return;
    }
    throw Object.assign(new Error('rate-limit state kept changing under us'), { code: 'EAGAIN' });
  }

  async remove(key: string): Promise<void> {
    await this.#redis.del(KEY_PREFIX + key);
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
