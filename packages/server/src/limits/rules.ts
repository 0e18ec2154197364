/** One limit: at most `limit` attempts in any `windowMs` (a sliding log, window.ts). */
export interface LimitRule {
  /** A stable name, part of the stored key. */
  name: string;
  limit: number;
  windowMs: number;
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
  },
  /**
   * Wrong passwords from one trusted device (a valid device token of the account): the same
   * budget as the account's, but its own, so the owner is never locked out by strangers' guesses.
   */
  loginDevice: {
    name: 'login-device',
    limit: 5,
    windowMs: 15 * MINUTE,
  },
  /** Failed logins from one address, across accounts (credential stuffing); NAT-sized. */
  loginAddress: {
    name: 'login-address',
    limit: 50,
    windowMs: 15 * MINUTE,
  },
  /** Accounts created from one address (Supabase's default is 30 per 5 minutes). */
  register: {
    name: 'register',
    limit: 30,
    windowMs: 5 * MINUTE,
  },
  /**
   * Account mails asked for one address (a password reset, a verification sent again; issue 17):
   * whatever the answer, each request counts, so nobody floods an inbox, and an address that has
   * no account is limited exactly like one that has (the answer tells nothing).
   */
  accountMailEmail: {
    name: 'account-mail-email',
    limit: 5,
    windowMs: 60 * MINUTE,
  },
  /** Account mails asked for from one client address, across email addresses. */
  accountMailAddress: {
    name: 'account-mail-address',
    limit: 30,
    windowMs: 15 * MINUTE,
  },
  /** Refreshes of one session: an honest client refreshes every few minutes; this stops loops. */
  refreshSession: {
    name: 'refresh-session',
    limit: 30,
    windowMs: MINUTE,
  },
  /** Unknown or malformed refresh tokens from one address (guessing, or a broken client). */
  refreshAddress: {
    name: 'refresh-address',
    limit: 60,
    windowMs: MINUTE,
  },
} satisfies Record<string, LimitRule>;
