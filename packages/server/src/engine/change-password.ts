import { checkNewPassword, setPassword } from '../accounts/accounts.js';
import { RotorError } from '../errors.js';
import { verifyWithinBudget } from '../limits/password-attempts.js';
import type { ClientInfo } from '../sessions/context.js';
import type { Principal } from './authenticate.js';
import type { EngineContext } from './context.js';
import { limitAddress } from './limit-subject.js';
import { findAccountById } from './user-directory.js';

/** A password change by a signed-in caller. */
export interface ChangePasswordInput {
  principal: Principal;
  currentPassword: string;
  newPassword: string;
  /** Where the request came from, for the limits and the audit log. */
  client?: Partial<ClientInfo>;
}

/**
 * Changes the password of the caller's account and ends every other session of it; returns how
 * many ended. The current password is verified within the login budgets (a wrong one counts as a
 * failed login of the account), so a stolen access token opens no password oracle.
 * Errors: `invalid_request`, `rate_limited`, `invalid_credentials`, `session_revoked`,
 * `session_expired`.
 */
export async function changePassword(
  ctx: EngineContext,
  { principal, currentPassword, newPassword, client = {} }: ChangePasswordInput,
): Promise<number> {
  // Checked before anything is spent: a new password that cannot be set costs no guess.
  checkNewPassword(currentPassword, newPassword);
  const account = await findAccountById(ctx, principal.user.id);
  const subjects = { account: principal.user.email, address: limitAddress(client.ip) };
  const verified = await verifyWithinBudget(
    ctx.limits.shared,
    ctx.limits.rules,
    subjects,
    async () =>
      account === undefined
        ? false
        : ctx.accounts.passwords.verify(account.passwordHash, currentPassword),
  );
  if (!account || account.passwordHash === null || !verified) {
    throw new RotorError('invalid_credentials', 'The current password is incorrect.');
  }
  const user = account.user;
  return setPassword(ctx.accounts, {
    userId: user.id,
    sessionId: principal.session.id,
    verifiedHash: account.passwordHash,
    // The app's user table, when it keeps the hashes: the new one is written there.
    directory: ctx.users,
    newPassword,
    changed: (tx) =>
      ctx.audit.record(
        { type: 'password_changed', userId: user.id, sessionId: principal.session.id, ...client },
        tx,
      ),
  });
}
