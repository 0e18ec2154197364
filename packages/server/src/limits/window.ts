import type { LimitRule } from './rules.js';

/**
 * What is stored per key: a sliding log. Times are milliseconds since the epoch.
 *
 * A log rather than a counter (Cloudflare's weighted two-window estimate, used before): the
 * estimate lets up to twice the budget through in a window-long span that straddles two windows,
 * and "a budget of N" must mean at most N attempts in **any** window (issue 13). A log holds at
 * most `limit` times per key, a few dozen numbers.
 *
 * No block is stored. A refusal changes nothing: the attempts in the log are the whole state, and
 * one that is given back (a right password) frees its place at once. An earlier version stored a
 * block at each refusal; an attack review showed honest sign-ins racing each other (eight right
 * passwords at once, an office of 150 behind one address) each earning a 15-minute block for
 * everyone, though every place was given back a moment later.
 */
export interface LimitState {
  /** Times of the attempts held within the last window, oldest first; at most `limit`. */
  events: number[];
  /** After this the state means nothing any more and may be deleted (the retention job). */
  expiresAt: number;
}

/** The state of a subject never seen (or forgotten). */
export function emptyLimitState(): LimitState {
  return { events: [], expiresAt: 0 };
}

/** The outcome of {@link reserveEvent}. */
export interface Reservation {
  state: LimitState;
  /** True when the attempt was counted and may go ahead. */
  admitted: boolean;
  /**
   * Milliseconds until the oldest held attempt leaves the window and a place frees, at the latest
   * (sooner if a held attempt is given back); 0 when this one was admitted.
   */
  waitMs: number;
}

/**
 * Counts one attempt at `now` if fewer than `limit` attempts are held in the window that ends now;
 * otherwise counts nothing and tells how long until a place frees.
 *
 * The caller holds the key's state exclusively while this runs (`LimitStore.update`), so two
 * racing attempts can never both take the last place: the whole rule of issue 13, item 1.
 */
export function reserveEvent(state: LimitState, rule: LimitRule, now: number): Reservation {
  const events = state.events.filter((at) => at > now - rule.windowMs);
  if (events.length < rule.limit) {
    events.push(now);
    return { state: withExpiry(events, rule), admitted: true, waitMs: 0 };
  }
  return {
    state: withExpiry(events, rule),
    admitted: false,
    waitMs: events[0]! + rule.windowMs - now,
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
  return withExpiry(events, rule);
}

/** A state is forgotten a window after its last attempt. */
function withExpiry(events: number[], rule: LimitRule): LimitState {
  const last = events.length ? events[events.length - 1]! : 0;
  return { events, expiresAt: last + rule.windowMs };
}
