import { parseEmail } from '../accounts/email.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { RotorError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { assertPlainText } from '../lib/plain-text.js';
import type { ClientInfo } from '../sessions/context.js';
import type { Store, UserRow } from '../store/store.js';
import type { UserDirectory } from './user-directory.js';

/** A user of an external sign-in: the address and, optionally, a display name. */
export interface CreateUserInput {
  email: string;
  name?: string | null | undefined;
}

/**
 * Creates a user without a password (issue 16): a user of an external sign-in (SSO, magic links)
 * that exists in Rotor so `signIn` and login tickets can start its sessions. A password login of
 * it is `invalid_credentials` after the usual dummy verification. `email_taken` when the
 * normalized email exists, with `details: {userId}` of that account; `invalid_request` for an email
 * or name that is not plain text.
 */
export async function createUser(
  ctx: { store: Store; clock: Clock; audit: AuditLog; users?: UserDirectory | undefined },
  input: CreateUserInput,
  /** Who asked (the admin API's caller), for the audit event `user_created`. */
  client: Partial<ClientInfo> = {},
): Promise<UserRow> {
  // With the app's own user table, users are the app's: one made here could never be found.
  if (ctx.users) {
    throw new RotorError('forbidden', 'Users are the app’s own: it keeps the user table.');
  }
  const email = parseEmail(input.email);
  if (input.name) assertPlainText(input.name, 'name', { identity: true });
  const user: UserRow = {
    id: newId(),
    email,
    name: input.name?.trim() || null,
    password_hash: null,
    created_at: ctx.clock.now(),
    session_epoch: 0,
    email_verified_at: null,
  };
  if (!(await ctx.store.insertUser(user))) {
    // The caller (the app's backend through the admin API, or its own code) may know the id: a
    // backend that creates its users "if needed" then recovers from a lost mapping, or from two
    // first sign-ins of one user racing, without a second request. `/auth/register` never says it.
    const existing = await ctx.store.findUserByEmail(email);
    throw new RotorError(
      'email_taken',
      'An account with this email already exists.',
      existing && { details: { userId: existing.id } },
    );
  }
  await ctx.audit.record({ type: 'user_created', userId: user.id, ...client });
  return user;
}
