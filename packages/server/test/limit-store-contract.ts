import { describe, expect, it } from 'vitest';
import { ManualClock, RateLimitedError, RateLimiter, type LimitStore } from '@rotor/server';

/** Two stores over one shared backend, as two instances see it, and how to close them. */
export interface LimitStorePair {
  stores: [LimitStore, LimitStore];
  close(): Promise<void>;
}

const RULE = { name: 'contract', limit: 5, windowMs: 60_000 };

/**
 * The contract every limit store keeps (limits/limiter.ts, `LimitStore`): an update is atomic per
 * key across every process that shares the store, so a budget of N admits exactly N of any number
 * of simultaneous reservations (issue 13, item 1). Run once per store: memory, SQL on each
 * dialect, Redis.
 */
export function limitStoreContract(
  name: string,
  makeStore: () => Promise<LimitStorePair>,
  available = true,
): void {
  describe.skipIf(!available)(`limit store contract [${name}]`, () => {
    it('40 simultaneous reservations through two instances: exactly the budget is admitted, the rest refused with a true Retry-After', async () => {
      const { stores, close } = await makeStore();
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
      const { stores, close } = await makeStore();
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

    it('subjects are apart: one spent budget leaves another untouched', async () => {
      const { stores, close } = await makeStore();
      try {
        const clock = new ManualClock(Date.UTC(2030, 0, 1));
        const [a, b] = stores.map((store) => new RateLimiter(store, clock));
        const spent = `subject-${Math.random()}`;
        for (let i = 0; i < 5; i += 1) await a!.reserve(RULE, spent);
        await expect(b!.reserve(RULE, spent)).rejects.toBeInstanceOf(RateLimitedError);
        await b!.reserve(RULE, `other-${Math.random()}`);
      } finally {
        await close();
      }
    });
  });
}
