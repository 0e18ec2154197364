import { createHash, createHmac, randomBytes } from 'node:crypto';

/** 256 random bits, base64url: 43 characters. */
const REFRESH_TOKEN_BYTES = 32;
const REFRESH_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A fresh opaque refresh token (API.md: at least 256 random bits, base64url). */
export function generateRefreshToken(): string {
  return randomBytes(REFRESH_TOKEN_BYTES).toString('base64url');
}

/** Whether `value` has the shape of a refresh token; anything else is refused before any lookup. */
export function isRefreshTokenShape(value: string): boolean {
  return REFRESH_TOKEN_PATTERN.test(value);
}

/**
 * The hash kept in the database. A plain SHA-256 suffices: the token has 256 bits of entropy, so
 * no dictionary or brute force applies, and the lookup by hash stays one indexed read.
 */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/**
 * The successor of `token` under the server's HMAC key. Deterministic, so a refresh that races
 * within the grace window re-derives the very successor the winner got, and no token is ever stored
 * in plaintext; unpredictable without the key, and an HMAC output is 256 bits like a random token.
 */
export function deriveSuccessor(hmacKey: Uint8Array, token: string): string {
  return createHmac('sha256', hmacKey)
    .update('rotor/refresh-successor/v1\0')
    .update(token)
    .digest('base64url');
}
