import { registerUser } from '../accounts/accounts.js';
import { addressSubject } from '../limits/address-subject.js';
import type { ClientInfo } from '../sessions/context.js';
import type { UserRow } from '../store/store.js';
import { RotorError } from '../errors.js';
import type { EngineContext } from './context.js';
import { mailVerification } from './verify-email.js';

/** What a sign-up gives: the account's email, password and name, and where it comes from. */
export type RegisterInput = {
  email: string;
  password: string;
  name?: string | null;
  /**
   * Mail the new account a verification link (default true; issue 17). The CLI's operator-made
   * accounts pass false: the operator decides when the user hears from Rotor.
   */
  sendVerification?: boolean;
} & Partial<ClientInfo>;

/**
 * Creates an account (`accounts.registerUser`). Sign-ups over HTTP count per address, before the
 * hashing; a caller without an address (the CLI) is the operator and is not limited.
 * With the app's own user table (`CreateRotorOptions.users`) sign-up is the app's: `forbidden`.
 * A verification link is mailed to the new account after the answer (issue 17).
 * Errors: `forbidden`, `rate_limited`, `invalid_request`, `email_taken`.
 */
export async function register(ctx: EngineContext, input: RegisterInput): Promise<UserRow> {
  if (ctx.users) {
    throw new RotorError('forbidden', 'Sign-up is the app’s own: it keeps the user table.');
  }
  if (input.ip)
    await ctx.limits.shared.reserve(ctx.limits.rules.register, addressSubject(input.ip));
  const user = await registerUser(ctx.accounts, input);
  // After the answer: the verification mail (issue 17).
  if (input.sendVerification !== false) mailVerification(ctx, user);
  return user;
}
