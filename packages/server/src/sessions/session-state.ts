import { RotorError } from '../errors.js';
import type { SessionRow } from '../store/store.js';

/** When the session ends if unused: the earlier of its idle expiry and its maximum lifetime. */
export function sessionEndsAt(session: SessionRow): number {
  return session.max_expires_at === null
    ? session.idle_expires_at
    : Math.min(session.idle_expires_at, session.max_expires_at);
}

/** Throws `session_revoked` or `session_expired` unless the session is usable at `now`. */
export function assertSessionActive(session: SessionRow, now: number): void {
  if (session.revoked_at !== null) {
    throw new RotorError(
      'session_revoked',
      'This session was signed out or revoked; sign in again.',
    );
  }
  if (sessionEndsAt(session) <= now) {
    throw new RotorError('session_expired', 'This session has expired; sign in again.');
  }
}
