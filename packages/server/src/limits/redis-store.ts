import { Redis } from 'ioredis';
import type { LimitStore } from './limiter.js';
import type { LimitState } from './window.js';

const KEY_PREFIX = 'rotor:limit:';
/** Enough for a few instances contending for one key; each try is two round trips. */
const RETRIES = 50;

/**
 * Limit states in Redis (`ROTOR_REDIS_URL`), shared by every instance that points at it. An update
 * is optimistic: WATCH the key, read, compute, and write in MULTI/EXEC, which Redis refuses if
 * another client wrote the key in between; then try again, so no two instances ever both take the
 * last place of a budget. WATCH belongs to the connection, so this process runs its updates one at
 * a time on it (logins and sign-ups, not the hot path). Keys expire by themselves (`ttlMs`).
 */
/** The keys of {@link RedisLimitStore.claimOnce}, apart from the limit states. */
const ONCE_PREFIX = 'rotor:dpop:';

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

  update(
    key: string,
    change: (state: LimitState | undefined) => LimitState,
    ttlMs: number,
  ): Promise<void> {
    const run = this.#queue.then(() => this.#update(KEY_PREFIX + key, change, ttlMs));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #update(key: string, change: (state: LimitState | undefined) => LimitState, ttlMs: number) {
    for (let attempt = 0; attempt < RETRIES; attempt += 1) {
      await this.#redis.watch(key);
      const value = await this.#redis.get(key);
      const next = change(value === null ? undefined : (JSON.parse(value) as LimitState));
      const result = await this.#redis
        .multi()
        .set(key, JSON.stringify(next), 'PX', Math.max(1, Math.ceil(ttlMs)))
        .exec();
      if (result !== null) return;
    }
    throw Object.assign(new Error('rate-limit state kept changing under us'), { code: 'EAGAIN' });
  }

  /**
   * Records `key` for `ttlMs` unless it is recorded already: one `SET NX PX`, atomic across every
   * instance on this Redis. True when this call recorded it (the DPoP proof jti store, issue 18).
   */
  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#redis.set(
      `${ONCE_PREFIX}${key}`,
      '1',
      'PX',
      Math.max(1, Math.ceil(ttlMs)),
      'NX',
    );
    return reply === 'OK';
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
