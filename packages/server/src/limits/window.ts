import type { LimitRule } from './rules.js';

/** What is stored per key. Times are milliseconds since the epoch. */
export interface LimitState {
  /** Start of the current fixed window (a multiple of the rule's window). */
  windowStart: number;
  count: number;
  /** The previous window's count, weighted down as the current window advances. */
  prevCount: number;
  blockedUntil: number;
  /** Breaches in a row; the block doubles with each. Cleared by a quiet window. */
  strikes: number;
}

export const EMPTY_STATE: LimitState = Object.freeze({
  windowStart: 0,
  count: 0,
  prevCount: 0,
  blockedUntil: 0,
  strikes: 0,
});

/** Milliseconds until `state` lets a request through at `now`; 0 when it does. */
export function blockedFor(state: LimitState, now: number): number {
  return Math.max(0, state.blockedUntil - now);
}

/**
 * Counts one event at `now`: the sliding-window estimate (Cloudflare's: the previous window's count
 * weighted by how much of it still overlaps, plus the current count) decides whether this event
 * breaches the limit. A breach blocks for `blockMs × 2^strikes`, capped, and starts the count
 * afresh, so `Retry-After` is true: after the block a full budget is back, and spending it at once
 * again earns a block twice as long. A whole quiet window after the last block forgives the strikes.
 */
export function addEvent(
  state: LimitState,
  rule: LimitRule,
  now: number,
): { state: LimitState; breached: boolean } {
  const current = now - (now % rule.windowMs);
  let { count, prevCount, strikes } = state;
  if (state.windowStart !== current) {
    prevCount = state.windowStart === current - rule.windowMs ? count : 0;
    count = 0;
    if (prevCount === 0 && now - state.blockedUntil >= rule.windowMs) strikes = 0;
  }
  count += 1;
  const overlap = 1 - (now - current) / rule.windowMs;
  const estimate = prevCount * overlap + count;
  if (estimate <= rule.limit) {
    return {
      state: { ...state, windowStart: current, count, prevCount, strikes },
      breached: false,
    };
  }
  const block = Math.min(rule.maxBlockMs, rule.blockMs * 2 ** strikes);
  return {
    state: {
      windowStart: current,
      count: 0,
      prevCount: 0,
      strikes: strikes + 1,
      blockedUntil: now + block,
    },
    breached: true,
  };
}
