import { RotorError } from '../errors.js';

const MAX_EMAIL_LENGTH = 254;

/**
 * The one spelling of an email that Rotor stores and compares: trimmed, NFKC, lower case, so two
 * spellings of one address cannot make two accounts.
 */
export function normalizeEmail(email: string): string {
  return email.trim().normalize('NFKC').toLowerCase();
}

/** Normalizes and checks the shape of an email address; `invalid_request` when it has none. */
export function parseEmail(email: string): string {
  const normalized = normalizeEmail(email);
  if (normalized.length > MAX_EMAIL_LENGTH || !/^[^\s@]+@[^\s@]+$/u.test(normalized)) {
    throw new RotorError('invalid_request', 'The email address is not valid.', {
      details: { field: 'email' },
    });
  }
  return normalized;
}
