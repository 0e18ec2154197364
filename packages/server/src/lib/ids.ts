import { randomUUID } from 'node:crypto';

/** A new random identifier for users and sessions (UUID v4: 122 random bits). */
export function newId(): string {
  return randomUUID();
}

/** The shape of {@link newId}'s ids, in the lower case `randomUUID` writes. */
const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Whether `value` could be an id Rotor made. Anything else names no row, so callers answer it
 * without a query: a control character in an id reaches no database (PostgreSQL refuses U+0000).
 */
export function isId(value: string): boolean {
  return ID_PATTERN.test(value);
}
