import type { ClientInfo } from '../sessions/context.js';
import type { UserRow } from '../store/store.js';
import { redeemLink, type LinkInput } from './account-links.js';
import type { EngineContext } from './context.js';
import { issueEmailToken } from './email-tokens.js';
import { admitMailRequest, type MailRequestInput } from './mail-request.js';

/**
 * Mails `user` a verification link (a day; any older one is void), unless the address is proven
 * already. Runs after the answer of whatever asked (sign-up, a request), through `ctx.tasks`.
 */
export function mailVerification(ctx: EngineContext, user: UserRow): void {
  if (user.email_verified_at !== null || ctx.users) return;
  ctx.tasks.run('verify_email', async () => {
    const token = await ctx.store.transaction((tx) =>
      issueEmailToken(tx, ctx.clock.now(), {
        userId: user.id,
        purpose: 'verify_email',
        email: user.email,
      }),
    );
    ctx.mail.send('verify_email', user.email, ctx.mail.link('verify_email', token));
  });
}

/**
 * `POST /auth/verify-email/send` (issue 17): a verification mail again, asked for by address (the
 * caller may not be able to sign in: `ROTOR_REQUIRE_VERIFIED_EMAIL`). Answered like a password
 * reset request: the same way and in the same time whether an account has the address, or is
 * verified already; the look-up and the mail come after the answer.
 * Errors: `invalid_request`, `forbidden` (the app's own user table), `rate_limited`.
 */
export async function requestVerificationMail(
  ctx: EngineContext,
  input: MailRequestInput,
): Promise<void> {
  const email = await admitMailRequest(ctx, input);
  ctx.tasks.run('verify_email_request', async () => {
    const user = await ctx.store.findUserByEmail(email);
    if (user) mailVerification(ctx, user);
  });
}

/**
 * `POST /auth/verify-email`: proves the address with the link's token. The address must still be
 * the account's (a link mailed before an email change proves nothing now). Idempotent for the
 * account: a proven address stays proven with its first time. Audited as `email_verified`.
 * Errors: `invalid_link`, `rate_limited`.
 */
export async function verifyEmail(
  ctx: EngineContext,
  input: LinkInput & Partial<ClientInfo>,
): Promise<UserRow> {
  return redeemLink(ctx, 'verify_email', input, async ({ tx, user, now }) => {
    if (user.email_verified_at !== null) return user;
    await tx.setEmailVerified(user.id, now);
    await ctx.audit.record(
      { type: 'email_verified', userId: user.id, ip: input.ip, userAgent: input.userAgent },
      tx,
    );
    return { ...user, email_verified_at: now };
  });
}
