import type { Clock } from '../clock.js';
import { RotorError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { checkPasswordPolicy, type PasswordHasher } from '../passwords/passwords.js';
import type { Store, UserRow } from '../store/store.js';
import { normalizeEmail, parseEmail } from './email.js';

export interface AccountContext {
  store: Store;
  clock: Clock;
  passwords: PasswordHasher;
}

/** Creates an account; `email_taken` when the normalized email exists. */
export async function registerUser(
  ctx: AccountContext,
  input: { email: string; password: string; name?: string | null | undefined },
): Promise<UserRow> {
  const email = parseEmail(input.email);
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
