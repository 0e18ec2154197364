import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import { RotorError } from '../errors.js';
import type { LimitRule } from './rules.js';
import { addEvent, blockedFor, EMPTY_STATE, type LimitState } from './window.js';

/**
 * Where limit states live: the database (shared by every instance on it), Redis, or memory. `update`
 * must apply `change` atomically per key: read, compute, write, with no other update in between.
 */
export interface LimitStore {
  read(key: string): Promise<LimitState | undefined>;
  update(key: string, change: (state: LimitState | undefined) => LimitState): Promise<void>;
  remove(key: string): Promise<void>;
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

/**
 * Applies {@link LimitRule}s to subjects (an account, an address, a session). Subjects are hashed
 * before they are stored: the table holds no email or address in clear. A disabled limiter
 * (`ROTOR_RATE_LIMIT=off`) allows everything and stores nothing.
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

  /** Throws `rate_limited` while `subject` is blocked under `rule`; counts nothing. */
  async check(rule: LimitRule, subject: string): Promise<void> {
    if (!this.#enabled) return;
    const state = await this.#store.read(keyOf(rule, subject));
    const wait = state ? blockedFor(state, this.#clock.now()) : 0;
    if (wait > 0) throw new RateLimitedError(wait);
  }

  /** Counts a failed attempt (a wrong password); a breach blocks the next attempts. */
  async fail(rule: LimitRule, subject: string): Promise<void> {
    if (!this.#enabled) return;
    const now = this.#clock.now();
    await this.#store.update(keyOf(rule, subject), (state) => {
      if (state && blockedFor(state, now) > 0) return state;
      return addEvent(state ?? EMPTY_STATE, rule, now).state;
    });
  }

  /** Counts an attempt and throws `rate_limited` if it is one too many or `subject` is blocked. */
  async consume(rule: LimitRule, subject: string): Promise<void> {
    if (!this.#enabled) return;
    const now = this.#clock.now();
    let wait = 0;
    await this.#store.update(keyOf(rule, subject), (state) => {
      wait = state ? blockedFor(state, now) : 0;
      if (wait > 0) return state!;
      const next = addEvent(state ?? EMPTY_STATE, rule, now);
      if (next.breached) wait = next.state.blockedUntil - now;
      return next.state;
    });
    if (wait > 0) throw new RateLimitedError(wait);
  }

  /** Forgets `subject` under `rule` (a successful login clears its account's failures). */
  async reset(rule: LimitRule, subject: string): Promise<void> {
    if (!this.#enabled) return;
    await this.#store.remove(keyOf(rule, subject));
  }
}

function keyOf(rule: LimitRule, subject: string): string {
  return `${rule.name}:${createHash('sha256').update(subject).digest('base64url')}`;
}
