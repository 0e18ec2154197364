import { checkLoginInput } from '../accounts/accounts.js';
import { normalizeEmail } from '../accounts/email.js';
import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { verifyWithinBudget } from '../limits/password-attempts.js';
import type { ClientInfo } from '../sessions/context.js';
import type { EngineContext } from './context.js';
import type { TokenGrant } from './grant.js';
import { limitAddress } from './limit-subject.js';
import { startSignedInSession } from './sign-in.js';
import { findLoginAccount, upgradeWeakHash } from './user-directory.js';

/** A sign-in with a password (RFC 6749's resource owner credentials, `/auth/login`). */
export type LoginInput = {
  email: string;
  password: string;
  deviceName: string | null;
  delivery: Delivery;
  /** The OAuth client the session is issued to. */
  clientId?: string;
  /**
   * A device token from an earlier sign-in on this client, if it has one; several are tried
   * in turn (a browser's cookie header may carry a tossed one beside its own).
   */
  deviceToken?: string | readonly string[] | undefined;
} & ClientInfo;

/**
 * Verifies the password within the rate limits (against Rotor's table or the app's directory; a
 * bcrypt hash is upgraded to argon2id), opens a session (`startSignedInSession`, which may end
 * the least recently used ones) and grants its tokens, with a new device token. A failure is one
 * `invalid_credentials` whether the account exists or not, recorded as `login_failed`.
 * With `ROTOR_REQUIRE_VERIFIED_EMAIL`, the right password of an unproven address is
 * `email_not_verified` (issue 17), and no session starts.
 * Errors: `invalid_request`, `rate_limited`, `invalid_credentials`, `email_not_verified`,
 * `session_revoked`.
 */
export async function login(ctx: EngineContext, input: LoginInput): Promise<TokenGrant> {
  // Before anything else: input that is not plain text names no account (lib/plain-text.ts).
  checkLoginInput(input);
  const email = normalizeEmail(input.email);
  const address = limitAddress(input.ip);
  const nowSeconds = Math.floor(ctx.clock.now() / 1000);
  const account = await findLoginAccount(ctx, input.email);
  const user = account?.user;
  let device: string | undefined;
  const candidates =
    typeof input.deviceToken === 'string' ? [input.deviceToken] : input.deviceToken;
  for (const token of user ? (candidates ?? []) : []) {
    device = await ctx.deviceTokens.nonceFor(token, user!, nowSeconds);
    if (device !== undefined) break;
  }
  // Reserved before the password is verified: a spent budget costs no hashing, and attempts
  // in flight cannot all pass a check none of them has counted in yet (issue 13, item 1). The
  // right password spends no budget: honest users behind one address never add up.
  // The budget of the account found, not of what was typed: an app's directory may find one user
  // by several spellings (a username and an email); each must not bring a budget of its own.
  const accountKey = user?.email ?? email;
  const subjects = { account: device === undefined ? accountKey : undefined, device, address };
  const verified = await verifyWithinBudget(ctx.limits.shared, ctx.limits.rules, subjects, () =>
    // An unknown account, or one without a password, costs the same dummy verification.
    account
      ? ctx.accounts.passwords.verify(account.passwordHash, input.password)
      : ctx.accounts.passwords.verifyUnknown(input.password),
  );
  if (!account || !verified) {
    await ctx.audit.record({
      type: 'login_failed',
      userId: user?.id ?? null,
      ip: input.ip,
      userAgent: input.userAgent,
    });
    throw new RotorError('invalid_credentials', 'The email or password is incorrect.');
  }
  // Told only to whoever knew the password, so it reveals nothing about which addresses exist.
  // The app's own users are the app's to verify (a directory user has no Rotor verification).
  if (ctx.policy.requireVerifiedEmail && !ctx.users && user!.email_verified_at === null) {
    throw new RotorError('email_not_verified');
  }
  // A bcrypt hash (a user table migrated from another system) becomes argon2id now.
  const current = await upgradeWeakHash(
    { ...ctx, passwords: ctx.accounts.passwords },
    account,
    input.password,
  );
  return startSignedInSession(ctx, current, {
    deviceName: input.deviceName,
    delivery: input.delivery,
    clientId: input.clientId,
    ip: input.ip,
    userAgent: input.userAgent,
    dpopJkt: input.dpopJkt,
  });
}
