import { parseEmail } from '../accounts/email.js';
import { RotorError } from '../errors.js';
import { verifyWithinBudget } from '../limits/password-attempts.js';
import type { ClientInfo } from '../sessions/context.js';
import type { UserRow } from '../store/store.js';
import { redeemLink, type LinkInput } from './account-links.js';
import type { Principal } from './authenticate.js';
import type { EngineContext } from './context.js';
import { issueEmailToken } from './email-tokens.js';
import { limitAddress } from './limit-subject.js';

/** `POST /auth/email`: a signed-in caller asks to move the account to `newEmail`. */
export interface RequestEmailChangeInput {
  principal: Principal;
  newEmail: string;
  /** The account's password: a stolen access token alone moves no account. */
  password: string;
  client?: Partial<ClientInfo>;
}

/**
 * Asks for an email change (issue 17). The password is verified within the login budgets (a wrong
 * one counts as a failed login of the account); the request then counts against the new address's
 * account-mail budget (`ROTOR_RATE_LIMIT_ACCOUNT_MAIL`, shared with resets and verifications asked
 * for it) and the client's. Then, after the answer: a confirmation link to the new address (a day),
 * and a notice to the old one with a link that undoes the change (a week; the defence when a
 * session was hijacked). When another account has the new address, or holds it reserved (its undo
 * link still works), its owner is told instead and no token is made: the answer is the same, so
 * the form finds no accounts. A newer request voids the older confirmation, and so does a new
 * password. Audited as `email_change_requested`.
 * Errors: `invalid_request` (`details.field: 'newEmail'`), `forbidden` (the app's own user
 * table), `invalid_credentials`, `rate_limited`.
 */
export async function requestEmailChange(
  ctx: EngineContext,
  { principal, newEmail, password, client = {} }: RequestEmailChangeInput,
): Promise<void> {
  if (ctx.users) {
    throw new RotorError('forbidden', 'Accounts are the app’s own: it changes their addresses.');
  }
  const target = parseEmail(newEmail, 'newEmail');
  const user = principal.user;
  if (target === user.email) {
    throw new RotorError('invalid_request', 'This is the account’s address already.', {
      details: { field: 'newEmail' },
    });
  }
  const account = await ctx.store.findUserById(user.id);
  const subjects = { account: user.email, address: limitAddress(client.ip) };
  const verified = await verifyWithinBudget(ctx.limits.shared, ctx.limits.rules, subjects, () =>
    account?.password_hash
      ? ctx.accounts.passwords.verify(account.password_hash, password)
      : ctx.accounts.passwords.verifyUnknown(password),
  );
  if (!account?.password_hash || !verified) {
    throw new RotorError('invalid_credentials', 'The password is incorrect.');
  }
  // The mails go to an address the caller names: counted against that address's account-mail
  // budget like a reset request for it (and the client's), or a signed-in account could mail any
  // inbox without end.
  const { shared, rules } = ctx.limits;
  if (client.ip) await shared.reserve(rules.accountMailAddress, limitAddress(client.ip));
  await shared.reserve(rules.accountMailEmail, target);
  ctx.tasks.run('email_change', async () => {
    const tokens = await ctx.store.transaction(async (tx) => {
      const current = await tx.lockUser(user.id);
      // Moved meanwhile (another change confirmed): this request was about an address it no
      // longer has.
      if (!current || current.email !== user.email) return undefined;
      const now = ctx.clock.now();
      // Another account's old address, while its undo link lives, is taken too (isEmailReserved).
      if ((await tx.findUserByEmail(target)) || (await tx.isEmailReserved(target, now, user.id))) {
        return 'taken' as const;
      }
      const change = await issueEmailToken(tx, now, {
        userId: user.id,
        purpose: 'email_change',
        email: current.email,
        newEmail: target,
      });
      const undo = await issueEmailToken(tx, now, {
        userId: user.id,
        purpose: 'email_undo',
        email: current.email,
        newEmail: target,
      });
      await ctx.audit.record({ type: 'email_change_requested', userId: user.id, ...client }, tx);
      return { change, undo };
    });
    if (tokens === 'taken') {
      ctx.mail.send('email_change_taken', target, { otherEmail: user.email });
    } else if (tokens) {
      ctx.mail.send('email_change_confirm', target, {
        ...ctx.mail.link('email_change', tokens.change),
        otherEmail: user.email,
      });
      ctx.mail.send('email_change_notice', user.email, {
        ...ctx.mail.link('email_undo', tokens.undo),
        otherEmail: target,
      });
    }
  });
}

/**
 * `POST /auth/email/confirm`: the new address's link makes the change, the new address proven.
 * Sessions stay (the owner asked, with the password); access tokens carry the new address from
 * their next refresh. Another account took the address meanwhile, or holds it reserved by a live
 * undo link: `email_taken`.
 * Audited as `email_changed`. Errors: `invalid_link`, `email_taken`, `rate_limited`.
 */
export async function confirmEmailChange(
  ctx: EngineContext,
  input: LinkInput & Partial<ClientInfo>,
): Promise<UserRow> {
  return redeemLink(ctx, 'email_change', input, async ({ tx, row, user, now }) => {
    const email = row.new_email!;
    if (!(await tx.changeEmail(user.id, email, now))) {
      throw new RotorError('email_taken', 'Another account has this address now.');
    }
    // A reset or verification mailed to the old address is void (redeemLink compares addresses);
    // deleted too, so nothing pending names it.
    await tx.deleteEmailTokens(user.id, ['password_reset', 'verify_email']);
    await ctx.audit.record(
      { type: 'email_changed', userId: user.id, ip: input.ip, userAgent: input.userAgent },
      tx,
    );
    return { ...user, email, email_verified_at: now };
  });
}

/** What an undo did: the account back on its old address, and how many sessions ended. */
export interface EmailChangeUndoResult {
  user: UserRow;
  sessionsEnded: number;
}

/**
 * `POST /auth/email/undo`: the old address's link takes the account back (issue 17: the usual
 * defence when a session was hijacked). Before the change was confirmed it cancels it; after, it
 * restores the old address. Either way **every** session ends (`email_change_undone`) with the
 * session epoch moved, and pending confirmations, resets and verifications are void, as are the
 * undo links of later changes (a hijacker who chained a second change cannot undo the owner's undo;
 * the oldest address's link stays good). The owner should then reset the password (whoever
 * changed the address knew it). Audited as `email_change_undone`.
 * Errors: `invalid_link`, `email_taken` (another account took the old address), `rate_limited`.
 */
export async function undoEmailChange(
  ctx: EngineContext,
  input: LinkInput & Partial<ClientInfo>,
): Promise<EmailChangeUndoResult> {
  return redeemLink(ctx, 'email_undo', input, async ({ tx, row, user, now }) => {
    const email = row.email;
    if (email !== user.email && !(await tx.changeEmail(user.id, email, now))) {
      throw new RotorError('email_taken', 'Another account has this address now.');
    }
    if (email === user.email) await tx.setEmailVerified(user.id, now);
    await tx.deleteEmailTokens(user.id, ['email_change', 'password_reset', 'verify_email']);
    await tx.deleteEmailTokens(user.id, ['email_undo'], { createdAfter: row.created_at });
    await tx.bumpSessionEpoch(user.id);
    const sessionsEnded = await tx.revokeUserSessions(user.id, now, 'email_change_undone');
    await ctx.audit.record(
      { type: 'email_change_undone', userId: user.id, ip: input.ip, userAgent: input.userAgent },
      tx,
    );
    return { user: { ...user, email, email_verified_at: now }, sessionsEnded };
  });
}
