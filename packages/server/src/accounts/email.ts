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

/**
 * What an address Rotor accepts is made of: one `@` between two non-empty parts, none of them
 * whitespace (any, after NFKC) nor a character that address lists and headers give a meaning to:
 * `, ; : < > ( ) " [ ] \`. With those, one "address" is several recipients to a mailer
 * (`a@x.com,b@y.com`), a display name hiding another (`A <b@y.com>`), a quoted or commented part,
 * or an address literal (`a@[127.0.0.1]`); Rotor mails the addresses it stores, so it stores none.
 */
const EMAIL_SHAPE = /^[^\s@,;:<>()"[\]\\]+@[^\s@,;:<>()"[\]\\]+$/u;

/**
 * Normalizes and checks the shape of an email address ({@link EMAIL_SHAPE}); `invalid_request`
 * with `details.field` when it has none.
 */
export function parseEmail(email: string, field = 'email'): string {
  const normalized = normalizeEmail(email, field);
  if (normalized.length > MAX_EMAIL_LENGTH || !EMAIL_SHAPE.test(normalized)) {
    throw new RotorError('invalid_request', 'The email address is not valid.', {
      details: { field },
    });
  }
  return normalized;
}
