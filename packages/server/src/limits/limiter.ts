import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import { RotorError } from '../errors.js';
import type { LimitRule } from './rules.js';
import { emptyLimitState, releaseEvent, reserveEvent, type LimitState } from './window.js';

/**
 * Where limit states live: the database (shared by every instance on it), Redis, or memory.
 * `update` must apply `change` atomically per key, across every process that shares the store:
 * read, compute, write, with no other update of the key in between. `change` is synchronous and
 * may run more than once (optimistic stores retry it); only its last run's result counts.
 */
export interface LimitStore {
  /** `ttlMs`: how long after this write the state may still matter (stores that expire keys). */
  update(
    key: string,
    change: (state: LimitState | undefined) => LimitState,
    ttlMs: number,
  ): Promise<void>;
}

/** The error of a refused attempt; the HTTP layer turns `retryAfterSeconds` into `Retry-After`. */
export class RateLimitedError extends RotorError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterMs: number) {
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super('rate_limited', `Too many attempts; try again in ${seconds} s.`);
    this.retryAfterSeconds = seconds;
  }
}

/** An admitted attempt. `release` gives it back (a success that should not spend the budget). */
export interface LimitReservation {
  release(): Promise<void>;
}

const NOTHING_RESERVED: LimitReservation = Object.freeze({ release: async () => {} });

/**
 * Applies {@link LimitRule}s to subjects (an account, an address, a session). Subjects are hashed
 * before they are stored: no email or address in clear. A disabled limiter
 * (`ROTOR_RATE_LIMIT=off`) allows everything and stores nothing.
 *
 * Attempts are **reserved before** the work they guard (a password verification), in one atomic
 * update of the subject's state, and given back afterwards when they should not count. Counting
 * after the work (as before issue 13) let every attempt in flight pass a check that none of them
 * had yet counted in: 45 simultaneous guesses against a budget of 5 were all verified.
 */
export class RateLimiter {
  readonly #store: LimitStore;
  readonly #clock: Clock;
  readonly #enabled: boolean;

  constructor(store: LimitStore, clock: Clock, enabled = true) {
    this.#store = store;
    this.#clock = clock;
    this.#enabled = enabled;
  }

  /**
   * Counts an attempt of `subject` under `rule`, or throws {@link RateLimitedError} with nothing
   * counted when the budget of the window is spent or the subject is blocked.
   */
  async reserve(rule: LimitRule, subject: string): Promise<LimitReservation> {
    if (!this.#enabled) return NOTHING_RESERVED;
    const now = this.#clock.now();
    const key = keyOf(rule, subject);
    // A state matters until a window after its last attempt.
    const ttlMs = rule.windowMs;
    let outcome = { admitted: false, waitMs: 0 };
    await this.#store.update(
      key,
      (state) => {
        const reserved = reserveEvent(state ?? emptyLimitState(), rule, now);
        outcome = reserved;
        return reserved.state;
      },
      ttlMs,
    );
    if (!outcome.admitted) throw new RateLimitedError(outcome.waitMs);
    return {
      release: () =>
        this.#store.update(
          key,
          (state) => releaseEvent(state ?? emptyLimitState(), rule, now),
          ttlMs,
        ),
    };
  }
}

function keyOf(rule: LimitRule, subject: string): string {
  return `${rule.name}:${createHash('sha256').update(subject).digest('base64url')}`;
}
