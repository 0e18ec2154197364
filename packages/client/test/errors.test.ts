import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  ROTOR_ERROR_CODES,
  SESSION_END_REASONS,
  shouldRetry,
  type RotorErrorCode,
  type SessionEndReason,
} from '@rotor/client';
import {
  ERRORS,
  type RotorErrorCode as ServerErrorCode,
  type SessionEndReason as ServerSessionEndReason,
} from '@rotor/server';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * The SDK repeats two lists of the server's (the packages share no types package): its error codes
 * and the reasons a session ends. These tests hold the copies to the originals, at run time where
 * the server has a value and at compile time (`npm run typecheck`) where it has only a type.
 */
describe("the SDK's copies of the server's lists", () => {
  it("ROTOR_ERROR_CODES is the server's error table, code for code", () => {
    expect([...ROTOR_ERROR_CODES].sort()).toEqual(Object.keys(ERRORS).sort());
    expectTypeOf<RotorErrorCode>().toEqualTypeOf<ServerErrorCode>();
  });

  it("SESSION_END_REASONS is the server's SessionEndReason and docs/api.md's reasons table", () => {
    expectTypeOf<SessionEndReason>().toEqualTypeOf<ServerSessionEndReason>();
    const api = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
    const table = /\| `details.reason`[^\n]*\n\|[^\n]*\n((?:\|[^\n]*\n)+)/.exec(api)?.[1] ?? '';
    const documented = [...table.matchAll(/^\| `(\w+)`/gm)].map((m) => m[1]);
    expect([...SESSION_END_REASONS].sort()).toEqual(documented.sort());
  });
});

describe('shouldRetry: the refresh-and-retry rule of client.fetch and the axios adapter', () => {
  it('a 401 for an expired or no longer valid access token is worth one refresh and retry', () => {
    expect(shouldRetry(401, 'token_expired')).toBe(true);
    expect(shouldRetry(401, 'invalid_token')).toBe(true);
  });

  it('every other answer is final: a dead session, a missing token, another status', () => {
    const others = ROTOR_ERROR_CODES.filter((c) => c !== 'token_expired' && c !== 'invalid_token');
    for (const code of others) expect(shouldRetry(401, code), code).toBe(false);
    expect(shouldRetry(403, 'token_expired')).toBe(false);
    expect(shouldRetry(0, 'token_expired')).toBe(false);
    expect(shouldRetry(401, undefined)).toBe(false);
  });
});
