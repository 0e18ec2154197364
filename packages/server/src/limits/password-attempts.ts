import type { RateLimitBudgets } from '../config/load-config.js';
import type { LimitReservation, RateLimiter } from './limiter.js';

/** Who a password verification is charged to. */
export interface PasswordAttemptSubjects {
  /**
   * The account's normalized email: the brute-force budget every untrusted client shares. Absent
   * when the client proved with a device token that it signed in to this account before.
   */
  account?: string | undefined;
  /**
   * The nonce of a valid device token for this account (OWASP's "device cookies"): a client that
   * signed in from here before is charged to its own budget and never locked out by the account's.
   */
  device?: string | undefined;
  /** The client's address (an IPv6 client's /64): credential stuffing across accounts. */
  address: string;
}

/**
 * Reserves one password verification in every budget it is charged to, **before** the
 * verification runs, each in one atomic update that every instance shares (issue 13, item 1: a
 * budget of N admits at most N verifications in any window, whatever the concurrency). Throws
 * `rate_limited` with nothing reserved when any budget is spent. The caller releases the
 * reservation when the password was right: honest sign-ins spend no budget, so the users behind
 * one office NAT never lock each other out.
 */
export async function reservePasswordAttempt(
  limiter: RateLimiter,
  rules: Pick<RateLimitBudgets, 'loginAccount' | 'loginDevice' | 'loginAddress'>,
  subjects: PasswordAttemptSubjects,
): Promise<LimitReservation> {
  const held: LimitReservation[] = [];
  const release = async () => {
    for (const reservation of held.splice(0)) await reservation.release();
  };
  try {
    if (subjects.device !== undefined) {
      held.push(await limiter.reserve(rules.loginDevice, subjects.device));
    } else if (subjects.account !== undefined) {
      held.push(await limiter.reserve(rules.loginAccount, subjects.account));
    }
    held.push(await limiter.reserve(rules.loginAddress, subjects.address));
  } catch (error) {
    await release();
    throw error;
  }
  return { release };
}

/**
 * Runs one password verification inside its budgets: reserved before `verify` runs
 * ({@link reservePasswordAttempt}), given back when the password was right or the verification
 * failed for another reason than a wrong password (an error is no guess). Tells whether it was
 * right; throws `rate_limited` without verifying when a budget is spent.
 */
export async function verifyWithinBudget(
  limiter: RateLimiter,
  rules: Pick<RateLimitBudgets, 'loginAccount' | 'loginDevice' | 'loginAddress'>,
  subjects: PasswordAttemptSubjects,
  verify: () => Promise<boolean>,
): Promise<boolean> {
  const attempt = await reservePasswordAttempt(limiter, rules, subjects);
  let right: boolean;
  try {
    right = await verify();
  } catch (error) {
    await attempt.release();
    throw error;
  }
  if (right) await attempt.release();
  return right;
}
