import { RotorError } from '../errors.js';
import { assertPlainText } from '../lib/plain-text.js';

const MAX_EMAIL_LENGTH = 254;

/**
 * The one spelling of an email that Rotor stores and compares: trimmed, NFKC, lower case, so two
 * spellings of one address cannot make two accounts. Every lookup and insert by email goes through
 * here, so it also refuses (`invalid_request`, `details.field: 'email'`) what no spelling can fix:
 * control characters, which PostgreSQL cannot store, and invisible characters that would make a
 * look-alike of another account (see `lib/plain-text.ts`).
 */
export function normalizeEmail(email: string, field = 'email'): string {
  assertPlainText(email, field, { identity: true });
  return email.trim().normalize('NFKC').toLowerCase();
}

/** Normalizes and checks the shape of an email address; `invalid_request` when it has none. */
export function parseEmail(email: string, field = 'email'): string {
  const normalized = normalizeEmail(email, field);
  if (normalized.length > MAX_EMAIL_LENGTH || !/^[^\s@]+@[^\s@]+$/u.test(normalized)) {
    throw new RotorError('invalid_request', 'The email address is not valid.', {
      details: { field },
    });
  }
  return normalized;
}
