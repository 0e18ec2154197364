import { checkPasswordPolicy } from '../passwords/passwords.js';
import type { ClientInfo } from '../sessions/context.js';
import type { UserRow } from '../store/store.js';
import { findLink, redeemFoundLink, type LinkInput } from './account-links.js';
import type { EngineContext } from './context.js';
import { issueEmailToken } from './email-tokens.js';
import { admitMailRequest, type MailRequestInput } from './mail-request.js';

/**
 * `POST /auth/password-reset` (issue 17): resolves once the request is admitted (the address's
 * shape and the rate limits, the same for every address); the look-up, the token and the mail
 * happen after the answer, so that it takes the same time whether the address has an account.
 * For an account: a reset token (30 minutes; any older one of the user is void), mailed as a link,
 * and the audit event `password_reset_requested`. For no account: nothing, and nothing tells.
 * Errors: `invalid_request`, `forbidden` (the app's own user table), `rate_limited`.
 */
export async function requestPasswordReset(
  ctx: EngineContext,
  input: MailRequestInput,
): Promise<void> {
  const email = await admitMailRequest(ctx, input);
  ctx.tasks.run('password_reset', async () => {
    const user = await ctx.store.findUserByEmail(email);
    // A user without a Rotor password (an external sign-in) has nothing to reset here.
    if (!user || user.password_hash === null) return;
    const token = await ctx.store.transaction(async (tx) => {
      const issued = await issueEmailToken(tx, ctx.clock.now(), {
        userId: user.id,
        purpose: 'password_reset',
        email: user.email,
      });
      await ctx.audit.record(
        {
          type: 'password_reset_requested',
          userId: user.id,
          ip: input.ip,
          userAgent: input.userAgent,
        },
        tx,
      );
      return issued;
    });
    ctx.mail.send('password_reset', user.email, ctx.mail.link('password_reset', token));
  });
}

/** `POST /auth/password-reset/confirm`: the link's token and the new password. */
export type ConfirmPasswordResetInput = LinkInput & {
  newPassword: string;
} & Partial<ClientInfo>;

/** What a reset did: the account (its address now proven) and how many sessions ended. */
export interface PasswordResetResult {
  user: UserRow;
  sessionsEnded: number;
}

/**
 * Sets a new password from a reset link (issue 17; OWASP Forgot Password Cheat Sheet): in one
 * transaction the token is consumed, the password set, **every** session of the user ended
 * (`password_reset`) with the session epoch moved (a login or ticket verified before it starts no
 * session), the user's other pending resets and email changes voided, the address marked verified
 * (the link reached it), and the event `password_reset` recorded. The caller is not signed in: it
 * signs in with the new password, like every other device (OWASP: no automatic login after a
 * reset). The new password is hashed only once the link is found live (findLink), and the link is
 * redeemed after (redeemFoundLink).
 * Errors: `invalid_request` (`details.field: 'newPassword'`), `invalid_link`, `rate_limited`.
 */
export async function confirmPasswordReset(
  ctx: EngineContext,
  input: ConfirmPasswordResetInput,
): Promise<PasswordResetResult> {
  // Checked before the token is touched: a refused password spends no link.
  checkPasswordPolicy(input.newPassword, 'newPassword');
  // The slow hash only for a live link (an unknown, used or expired token costs one look-up, not
  // an argon2 hash: no CPU to exhaust), and before the transaction (it holds no lock). The
  // redemption re-checks that the link is still live: of two racing confirmations, one wins.
  const link = await findLink(ctx, 'password_reset', input);
  const hash = await ctx.accounts.passwords.hash(input.newPassword);
  return redeemFoundLink(ctx, link, async ({ tx, user, now }) => {
    // Bumps the epoch and deletes the user's login tickets, pending resets and pending email
    // changes (store/users.ts).
    await tx.updatePasswordHash(user.id, hash);
    if (user.email_verified_at === null) await tx.setEmailVerified(user.id, now);
    const sessionsEnded = await tx.revokeUserSessions(user.id, now, 'password_reset');
    await ctx.audit.record(
      { type: 'password_reset', userId: user.id, ip: input.ip, userAgent: input.userAgent },
      tx,
    );
    const verified = user.email_verified_at ?? now;
    return { user: { ...user, password_hash: hash, email_verified_at: verified }, sessionsEnded };
  });
}
