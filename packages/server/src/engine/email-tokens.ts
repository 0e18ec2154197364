import { createHash, randomBytes } from 'node:crypto';
import type { EmailTokenPurpose } from '../store/schema.js';
import type { EmailTokenRow, Store } from '../store/store.js';

/**
 * How long each link of the account mails works, in minutes (issue 17): a password reset 30
 * minutes (OWASP Forgot Password Cheat Sheet: short-lived); a verification or an email change's
 * confirmation a day; the undo of an email change, sent to the old address, a week, long enough
 * for the owner of a hijacked account to read their mail.
 */
export const EMAIL_TOKEN_TTL_MINUTES: Readonly<Record<EmailTokenPurpose, number>> = {
  password_reset: 30,
  verify_email: 24 * 60,
  email_change: 24 * 60,
  email_undo: 7 * 24 * 60,
};

/**
 * The fragment key of each link (`${ROTOR_APP_URL}#reset-password=<token>`): in the fragment, the
 * token never reaches a server's log nor a `Referer` (browsers never send fragments), and the page
 * removes it from the address bar as it loads (docs/api.md, "Account mails").
 */
export const LINK_ACTIONS: Readonly<Record<EmailTokenPurpose, string>> = {
  password_reset: 'reset-password',
  verify_email: 'verify-email',
  email_change: 'confirm-email',
  email_undo: 'undo-email-change',
};

/** 256 random bits, base64url: 43 characters. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The stored form of a link token: its SHA-256 (256 random bits need no slow hash). */
export function hashEmailToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** Whether `token` has the shape of a link token (anything else names no row and costs no query). */
export function isEmailToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

/**
 * Issues a link token in `tx`: 256 random bits, only the SHA-256 stored. A newer token voids the
 * user's older ones of the same purpose (issue 17: "void once a newer one is asked for"), except
 * undo tokens, each of which undoes its own change. The user's row is locked first (PostgreSQL
 * `FOR UPDATE`; SQLite's transactions are serial): without it, two requests racing in READ
 * COMMITTED each delete the tokens committed before them, miss the other's, and both insert,
 * leaving two live links. Returns the token, to be mailed.
 */
export async function issueEmailToken(
  tx: Store,
  now: number,
  input: { userId: string; purpose: EmailTokenPurpose; email: string; newEmail?: string | null },
): Promise<string> {
  await tx.lockUser(input.userId);
  if (input.purpose !== 'email_undo') await tx.deleteEmailTokens(input.userId, [input.purpose]);
  const token = randomBytes(32).toString('base64url');
  const row: EmailTokenRow = {
    token_hash: hashEmailToken(token),
    user_id: input.userId,
    purpose: input.purpose,
    email: input.email,
    new_email: input.newEmail ?? null,
    created_at: now,
    expires_at: now + EMAIL_TOKEN_TTL_MINUTES[input.purpose] * 60_000,
  };
  await tx.insertEmailToken(row);
  return token;
}
