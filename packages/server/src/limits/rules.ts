/** One limit: at most `limit` events per `windowMs` (sliding), then a block that doubles per breach. */
export interface LimitRule {
  /** A stable name, part of the stored key. */
  name: string;
  limit: number;
  windowMs: number;
  /** The first block after the limit is reached; each further breach doubles it. */
  blockMs: number;
  maxBlockMs: number;
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;

/**
 * The default limits, on unless `ROTOR_RATE_LIMIT=off`. A budget of N admits at most N attempts in
 * any window (a sliding log, window.ts), reserved before the work. Logins spend the budget only
 * when the password was wrong (a success gives its attempt back), so the many honest users behind
 * one office NAT share an address without sharing a budget. Refresh is limited per session; per
 * address only the look-ups of unknown tokens are.
 */
export const LIMITS = {
  /** Wrong passwords for one account (whatever the address): the brute-force guard. */
  loginAccount: {
    name: 'login-account',
    limit: 5,
    windowMs: 15 * MINUTE,
    blockMs: 30 * SECOND,
    maxBlockMs: 15 * MINUTE,
  },
  /**
   * Wrong passwords from one trusted device (a valid device token of the account): the same
   * budget as the account's, but its own, so the owner is never locked out by strangers' guesses.
   */
  loginDevice: {
    name: 'login-device',
    limit: 5,
    windowMs: 15 * MINUTE,
    blockMs: 30 * SECOND,
    maxBlockMs: 15 * MINUTE,
  },
  /** Failed logins from one address, across accounts (credential stuffing); NAT-sized. */
  loginAddress: {
    name: 'login-address',
    limit: 50,
    windowMs: 15 * MINUTE,
    blockMs: MINUTE,
    maxBlockMs: 30 * MINUTE,
  },
  /** Accounts created from one address (Supabase's default is 30 per 5 minutes). */
  register: {
    name: 'register',
    limit: 30,
    windowMs: 5 * MINUTE,
    blockMs: MINUTE,
    maxBlockMs: 60 * MINUTE,
  },
  /** Refreshes of one session: an honest client refreshes every few minutes; this stops loops. */
  refreshSession: {
    name: 'refresh-session',
    limit: 30,
    windowMs: MINUTE,
    blockMs: 30 * SECOND,
    maxBlockMs: 5 * MINUTE,
  },
  /** Unknown or malformed refresh tokens from one address (guessing, or a broken client). */
  refreshAddress: {
    name: 'refresh-address',
    limit: 60,
    windowMs: MINUTE,
    blockMs: MINUTE,
    maxBlockMs: 15 * MINUTE,
  },
} satisfies Record<string, LimitRule>;
