import type { LimitRule } from './rules.js';

/**
 * What is stored per key: a sliding log. Times are milliseconds since the epoch.
 *
 * A log rather than a counter (Cloudflare's weighted two-window estimate, used before): the
 * estimate lets up to twice the budget through in a window-long span that straddles two windows,
 * and "a budget of N" must mean at most N attempts in **any** window (issue 13). A log holds at
 * most `limit` times per key, a few dozen numbers.
 */
export interface LimitState {
  /** Times of the attempts admitted within the last window, oldest first; at most `limit`. */
  events: number[];
  /** Nothing is admitted before this time. */
  blockedUntil: number;
  /** Refusals that set a block, in a row; each doubles the next block. Forgiven by a quiet window. */
  strikes: number;
  /** After this the state means nothing any more and may be deleted (the retention job). */
  expiresAt: number;
}

/** The state of a subject never seen (or forgotten). */
export function emptyLimitState(): LimitState {
  return { events: [], blockedUntil: 0, strikes: 0, expiresAt: 0 };
}

/** The outcome of {@link reserveEvent}. */
export interface Reservation {
  state: LimitState;
  /** True when the attempt was counted and may go ahead. */
  admitted: boolean;
  /** Milliseconds until an attempt would be admitted; 0 when this one was. */
  waitMs: number;
}

/**
 * Counts one attempt at `now` if the budget allows: fewer than `limit` attempts in the window
 * ending now, and no block. Otherwise nothing is counted and the subject is blocked until the
 * oldest attempt leaves the window, or for `blockMs × 2^strikes` (capped) if that is longer: so
 * `Retry-After` is true (an attempt then fits) and hammering during a block earns nothing, while a
 * subject that keeps coming back after each block waits longer each time.
 *
 * The caller holds the key's state exclusively while this runs (`LimitStore.update`), so two
 * racing attempts can never both take the last place: the whole rule of issue 13, item 1.
 */
export function reserveEvent(state: LimitState, rule: LimitRule, now: number): Reservation {
  if (state.blockedUntil > now) {
    return { state, admitted: false, waitMs: state.blockedUntil - now };
  }
  const events = state.events.filter((at) => at > now - rule.windowMs);
  const quiet = events.length === 0 && now - state.blockedUntil >= rule.windowMs;
  const strikes = quiet ? 0 : state.strikes;
  if (events.length < rule.limit) {
    events.push(now);
    return {
      state: withExpiry({ events, blockedUntil: state.blockedUntil, strikes }, rule),
      admitted: true,
      waitMs: 0,
    };
  }
  const block = Math.min(rule.maxBlockMs, rule.blockMs * 2 ** strikes);
  const blockedUntil = Math.max(now + block, events[0]! + rule.windowMs);
  return {
    state: withExpiry({ events, blockedUntil, strikes: strikes + 1 }, rule),
    admitted: false,
    waitMs: blockedUntil - now,
  };
}

/**
 * Gives back an attempt admitted at `at` (a login that succeeded does not spend the budget):
 * removes one event of that time, if it is still in the log.
 */
export function releaseEvent(state: LimitState, rule: LimitRule, at: number): LimitState {
  const index = state.events.indexOf(at);
  if (index < 0) return state;
  const events = state.events.slice();
  events.splice(index, 1);
  return withExpiry({ ...state, events }, rule);
}

/** A state is forgotten a whole window after its last attempt and its block (strikes included). */
function withExpiry(state: Omit<LimitState, 'expiresAt'>, rule: LimitRule): LimitState {
  const last = state.events.length ? state.events[state.events.length - 1]! : 0;
  return { ...state, expiresAt: Math.max(last, state.blockedUntil) + rule.windowMs };
}
