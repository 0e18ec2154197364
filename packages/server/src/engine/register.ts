import { registerUser } from '../accounts/accounts.js';
import { addressSubject } from '../limits/address-subject.js';
import type { ClientInfo } from '../sessions/context.js';
import type { UserRow } from '../store/store.js';
import { RotorError } from '../errors.js';
import type { EngineContext } from './context.js';

/** What a sign-up gives: the account's email, password and name, and where it comes from. */
export type RegisterInput = {
  email: string;
  password: string;
  name?: string | null;
} & Partial<ClientInfo>;

/**
 * Creates an account (`accounts.registerUser`). Sign-ups over HTTP count per address, before the
 * hashing; a caller without an address (the CLI) is the operator and is not limited.
 * With the app's own user table (`CreateRotorOptions.users`) sign-up is the app's: `forbidden`.
 * Errors: `forbidden`, `rate_limited`, `invalid_request`, `email_taken`.
 */
export async function register(ctx: EngineContext, input: RegisterInput): Promise<UserRow> {
  if (ctx.users) {
    throw new RotorError('forbidden', 'Sign-up is the app’s own: it keeps the user table.');
  }
  if (input.ip)
    await ctx.limits.shared.reserve(ctx.limits.rules.register, addressSubject(input.ip));
  return registerUser(ctx.accounts, input);
}
