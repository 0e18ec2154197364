import type { Clock } from '../clock.js';
import { RotorError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { assertPlainText } from '../lib/plain-text.js';
import { checkPasswordPolicy, type PasswordHasher } from '../passwords/passwords.js';
import type { Store, UserRow } from '../store/store.js';
import { normalizeEmail, parseEmail } from './email.js';

export interface AccountContext {
  store: Store;
  clock: Clock;
  passwords: PasswordHasher;
}

/**
 * Creates an account; `email_taken` when the normalized email exists. The email and the name are
 * checked as identity text (`lib/plain-text.ts`) before the password is hashed.
 */
export async function registerUser(
  ctx: AccountContext,
  input: { email: string; password: string; name?: string | null | undefined },
): Promise<UserRow> {
  const email = parseEmail(input.email);
  if (input.name) assertPlainText(input.name, 'name', { identity: true });
  checkPasswordPolicy(input.password);
  const user: UserRow = {
    id: newId(),
    email,
    name: input.name?.trim() || null,
    password_hash: await ctx.passwords.hash(input.password),
    created_at: ctx.clock.now(),
  };
  if (!(await ctx.store.insertUser(user))) {
    throw new RotorError('email_taken', 'An account with this email already exists.');
  }
  return user;
}

/**
 * Refuses a login whose email or device name is not plain text (`lib/plain-text.ts`), before the
 * rate limits, the lookup and the hash: such input can name no account, and must reach no query.
 */
export function checkLoginInput(input: { email: string; deviceName?: string | null }): void {
  assertPlainText(input.email, 'email', { identity: true });
  if (input.deviceName) assertPlainText(input.deviceName, 'deviceName', { identity: true });
}

/**
 * Checks an email and password. An unknown email costs one argon2 verification too, and both
 * failures are the same `invalid_credentials`, so neither timing nor answer tells them apart.
 */
export async function verifyCredentials(
  ctx: AccountContext,
  email: string,
  password: string,
): Promise<UserRow> {
  const user = await ctx.store.findUserByEmail(normalizeEmail(email));
  const ok = user
    ? await ctx.passwords.verify(user.password_hash, password)
    : await ctx.passwords.verifyUnknown(password);
  if (!user || !ok)
    throw new RotorError('invalid_credentials', 'The email or password is incorrect.');
  return user;
}

/**
 * Changes a signed-in user's password: the current one must be right, the new one must meet the
 * policy and differ. Every other session of the user ends in the same transaction (whoever knew the
 * old password is signed out); the calling session stays. Returns how many sessions ended.
 */
export async function changePassword(
  ctx: AccountContext,
  input: { userId: string; sessionId: string; currentPassword: string; newPassword: string },
): Promise<number> {
  const user = await ctx.store.findUserById(input.userId);
  if (!user || !(await ctx.passwords.verify(user.password_hash, input.currentPassword))) {
    throw new RotorError('invalid_credentials', 'The current password is incorrect.');
  }
  checkPasswordPolicy(input.newPassword);
  if (input.newPassword === input.currentPassword) {
    throw new RotorError('invalid_request', 'The new password must differ from the current one.', {
      details: { field: 'newPassword' },
    });
  }
  const hash = await ctx.passwords.hash(input.newPassword);
  return ctx.store.transaction(async (tx) => {
    await tx.updatePasswordHash(user.id, hash);
    return tx.revokeUserSessions(user.id, ctx.clock.now(), 'password_changed', input.sessionId);
  });
}
