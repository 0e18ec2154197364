import type { Clock } from '../clock.js';
import { RotorError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { assertPlainText } from '../lib/plain-text.js';
import {
  checkPasswordPolicy,
  normalizePassword,
  type PasswordHasher,
} from '../passwords/passwords.js';
import { assertSessionActive } from '../sessions/session-state.js';
import type { Store, UserRow } from '../store/store.js';
import type { UserDirectory } from '../engine/user-directory.js';
import { parseEmail } from './email.js';

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
    session_epoch: 0,
    email_verified_at: null,
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
 * Checks a new password before anything is spent on it: the policy, and that it differs from the
 * current one as hashed (NFKC): a full-width spelling of the current password is the current
 * password (issue 13, item 15). `invalid_request` with `details.field: 'newPassword'`.
 */
export function checkNewPassword(currentPassword: string, newPassword: string): void {
  checkPasswordPolicy(newPassword, 'newPassword');
  if (normalizePassword(newPassword) === normalizePassword(currentPassword)) {
    throw new RotorError('invalid_request', 'The new password must differ from the current one.', {
      details: { field: 'newPassword' },
    });
  }
}

/**
 * Sets a signed-in user's new password (already verified and checked) and ends every other
 * session of the user in the same transaction (whoever knew the old password is signed out); the
 * calling session stays. The user's session epoch moves with the hash, so a login verified
 * against the old password that is still in flight creates no session (issue 13, item 3).
 *
 * The transaction first locks the user's row and checks that the hash the current password was
 * verified against is still the one stored, and that the calling session is still live: of two
 * password changes racing with the same current password (the owner, and a thief with a stolen
 * session), the second to commit finds the hash changed and changes nothing (`invalid_credentials`),
 * and a session that the first one ended cannot change the password after it (`session_revoked`;
 * `session_expired` for one that expired meanwhile: the one liveness rule, `sessionEndError`).
 * Returns how many sessions ended.
 */
export async function setPassword(
  ctx: AccountContext,
  input: {
    userId: string;
    sessionId: string;
    verifiedHash: string;
    newPassword: string;
    /** The app's user table, when it keeps the hashes: the new hash is written there. */
    directory?: UserDirectory | undefined;
    /** Runs before the commit (the audit event commits with the change: issue 15, item 5). */
    changed?: (tx: Store) => Promise<void>;
  },
): Promise<number> {
  const hash = await ctx.passwords.hash(input.newPassword);
  return ctx.store.transaction(async (tx) => {
    const now = ctx.clock.now();
    const current = await tx.lockUser(input.userId);
    const stored = input.directory
      ? (await input.directory.findById(input.userId))?.passwordHash
      : current?.password_hash;
    if (!current || stored !== input.verifiedHash) {
      throw new RotorError('invalid_credentials', 'The current password is incorrect.');
    }
    const session = await tx.findSession(input.sessionId);
    if (!session) {
      throw new RotorError(
        'session_revoked',
        'This session was signed out or revoked; sign in again.',
      );
    }
    assertSessionActive(session, now);
    if (input.directory) {
      // The directory's write cannot join this transaction; the epoch bump below can, and the
      // mirror row's lock orders this change against logins starting sessions meanwhile.
      await input.directory.updatePasswordHash(input.userId, hash);
      await tx.bumpSessionEpoch(input.userId);
    } else {
      await tx.updatePasswordHash(input.userId, hash);
    }
    const ended = await tx.revokeUserSessions(
      input.userId,
      now,
      'password_changed',
      input.sessionId,
    );
    await input.changed?.(tx);
    return ended;
  });
}
