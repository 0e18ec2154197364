import { parseEmail } from '../accounts/email.js';
import { RotorError } from '../errors.js';
import type { ClientInfo } from '../sessions/context.js';
import type { EngineContext } from './context.js';
import { limitAddress } from './limit-subject.js';

/** A request for an account mail by address: who asks for which address. */
export type MailRequestInput = { email: string } & Partial<ClientInfo>;

/**
 * The part of a request for an account mail (a password reset, a verification sent again) that
 * the answer waits for: the address's shape and the rate limits, per address asked for and per
 * client address. Both are counted whether or not an account has the address, so neither the
 * answer nor its time tells (issue 17). Returns the normalized address. With the app's own user
 * table the app owns the addresses: `forbidden`. A caller without a client address (the CLI, an
 * operator) is not limited.
 * Errors: `invalid_request`, `forbidden`, `rate_limited`.
 */
export async function admitMailRequest(
  ctx: Pick<EngineContext, 'users' | 'limits'>,
  input: MailRequestInput,
): Promise<string> {
  // The address's shape, as a sign-up's: nothing that a mailer would read as several recipients.
  const email = parseEmail(input.email);
  if (ctx.users) {
    throw new RotorError(
      'forbidden',
      'Accounts are the app’s own (it keeps the user table): it sends its own account mails.',
    );
  }
  // A caller without an address (the CLI) is the operator, and is not limited.
  if (!input.ip) return email;
  const { shared, rules } = ctx.limits;
  // Each request counts, answered or not: the budget stops floods of one inbox (per address asked
  // for) and sweeps across many (per client address).
  await shared.reserve(rules.accountMailAddress, limitAddress(input.ip));
  await shared.reserve(rules.accountMailEmail, email);
  return email;
}
