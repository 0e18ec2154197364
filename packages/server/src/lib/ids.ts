import { randomUUID } from 'node:crypto';

/** A new random identifier for users and sessions (UUID v4: 122 random bits). */
export function newId(): string {
  return randomUUID();
}
