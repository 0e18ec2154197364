import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { verify as verifyBcrypt } from '@node-rs/bcrypt';
import { RotorError } from '../errors.js';
import { assertPlainText } from '../lib/plain-text.js';

/** OWASP's argon2id parameters: 19 MiB, two passes, one lane. */
const ARGON2_OPTIONS = {
  // `Algorithm` is a const enum, which `verbatimModuleSyntax` cannot import as a value.
  algorithm: 2 as Algorithm.Argon2id,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

/** NIST 800-63B: at least 8 characters, allow at least 64; we allow 256. No composition rules. */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;

/**
 * The form of a password that is hashed and verified: NFKC, so the same password typed on two
 * keyboards (full-width and ASCII digits, say) is one password (NIST 800-63B 5.1.1.2), with every
 * lone surrogate as U+FFFD, which is what its UTF-8 encoding for argon2 turns it into anyway: so
 * two passwords that hash alike also compare alike. Every comparison of passwords compares this
 * form, never what was typed.
 */
export function normalizePassword(password: string): string {
  return password.replace(/\p{Cs}/gu, '\uFFFD').normalize('NFKC');
}

/**
 * Checks the policy for a new password: 8 to 256 Unicode characters (not UTF-16 units), and no
 * control character or lone surrogate (not printable, and a lone surrogate would be one password
 * with every other: see {@link normalizePassword}). `invalid_request` with `details.field`.
 */
export function checkPasswordPolicy(password: string, field = 'password'): void {
  assertPlainText(password, field, { identity: false });
  const length = [...normalizePassword(password)].length;
  if (length < PASSWORD_MIN || length > PASSWORD_MAX) {
    throw new RotorError(
      'invalid_request',
      `The password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters long.`,
      { details: { field } },
    );
  }
}

/**
 * bcrypt's hash prefixes (`$2a$`, `$2b$`, `$2y$`): user tables migrated from another system keep
 * working, and are re-hashed with argon2id at the next successful login ({@link needsRehash}).
 */
const BCRYPT_HASH = /^\$2[aby]\$/;

/**
 * Hashes passwords with argon2id and verifies argon2id and bcrypt hashes; `verifyUnknown` spends
 * the same time on no user.
 */
export class PasswordHasher {
  // Made at construction, so even the first login for an unknown email costs one verification only.
  readonly #dummy: Promise<string> = this.hash('rotor dummy password, never matches');

  /** Hashes {@link normalizePassword}'s form of `password`. */
  hash(password: string): Promise<string> {
    return hash(normalizePassword(password), ARGON2_OPTIONS);
  }

  /**
   * Whether `password` matches `encoded`: argon2id over its normalized form, or bcrypt over the
   * password as typed (the system that made it normalized nothing). No hash (a user without a
   * password, `null`) costs the dummy verification and is false.
   */
  async verify(encoded: string | null, password: string): Promise<boolean> {
    if (encoded === null) return this.verifyUnknown(password);
    try {
      if (BCRYPT_HASH.test(encoded)) return await verifyBcrypt(password, encoded);
      return await verify(encoded, normalizePassword(password));
    } catch {
      return false;
    }
  }

  /** Whether a hash that verified should be replaced by an argon2id one (a bcrypt import). */
  needsRehash(encoded: string): boolean {
    return BCRYPT_HASH.test(encoded);
  }

  /**
   * Verifies against a dummy hash made with the same parameters, so a login for an email that has
   * no account takes as long as one with a wrong password. Always false.
   */
  async verifyUnknown(password: string): Promise<false> {
    await verify(await this.#dummy, normalizePassword(password)).catch(() => false);
    return false;
  }
}
