import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERRORS, ERROR_STATUS, OAUTH_ERRORS, RotorError } from '@rotor/server';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** `| \`code\` | 401 |` rows of a Markdown table: code → status. */
function statusRows(text: string): Map<string, number> {
  return new Map(
    [...text.matchAll(/^\| `(\w+)`\s*\| (\d{3})\s*\|/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
}

describe('the error table', () => {
  it('gives every code an error status and a sentence for humans', () => {
    for (const [code, { status, message }] of Object.entries(ERRORS)) {
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
      expect(message, code).toMatch(/^[A-Z].*\.$/);
    }
  });

  it('derives ERROR_STATUS from it, code for code', () => {
    expect(ERROR_STATUS).toEqual(
      Object.fromEntries(Object.entries(ERRORS).map(([code, { status }]) => [code, status])),
    );
  });

  it('a RotorError without a message carries the table message; one with a message keeps it', () => {
    const plain = new RotorError('missing_token');
    expect(plain.message).toBe(ERRORS.missing_token.message);
    expect(plain.status).toBe(401);
    const specific = new RotorError('invalid_request', 'The email address is not valid.', {
      details: { field: 'email' },
    });
    expect(specific.message).toBe('The email address is not valid.');
    expect(specific.details).toEqual({ field: 'email' });
    const defaulted = new RotorError('unavailable', undefined, { cause: new Error('down') });
    expect(defaulted.message).toBe(ERRORS.unavailable.message);
    expect(defaulted.cause).toBeInstanceOf(Error);
  });
  // docs/errors.md and docs/api.md against this table: docs.test.ts.
});

describe('the OAuth error table (RFC 6749 §5.2)', () => {
  it('gives every code a 4xx status and a default error_description', () => {
    for (const [code, { status, description }] of Object.entries(OAUTH_ERRORS)) {
      expect([400, 401], code).toContain(status);
      expect(description, code).toMatch(/^[A-Z].*\.$/);
    }
  });

  it('docs/oauth.md lists each code with its status, and no other code', () => {
    const rows = statusRows(read('docs/oauth.md'));
    expect(Object.fromEntries(rows)).toEqual(
      Object.fromEntries(Object.entries(OAUTH_ERRORS).map(([code, { status }]) => [code, status])),
    );
  });
});
