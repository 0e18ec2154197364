import { RotorError } from '../errors.js';
import type { RevokeReason, SessionRow } from '../store/store.js';

/** When the session ends if unused: the earlier of its idle expiry and its maximum lifetime. */
export function sessionEndsAt(session: SessionRow): number {
  return session.max_expires_at === null
    ? session.idle_expires_at
    : Math.min(session.idle_expires_at, session.max_expires_at);
}

/**
 * Why an ended session ended, as `details.reason` of `401 session_revoked` and `session_expired`
 * (docs/api.md): the `revoked_reason` it was revoked with, or which lifetime ran out. Told only to
 * a holder of one of the session's own tokens, so that a client can say "signed out everywhere"
 * rather than a bare "signed out".
 */
export type SessionEndReason =
  | RevokeReason
  /** Not refreshed within `ROTOR_REFRESH_TTL`. */
  | 'idle'
  /** Past `ROTOR_SESSION_MAX_AGE`, however active. */
  | 'max_age';

/** `session_revoked` for a revoked session, with the reason it was revoked with when one is stored. */
export function sessionRevoked(session: SessionRow): RotorError {
  return new RotorError(
    'session_revoked',
    'This session was signed out or revoked; sign in again.',
    session.revoked_reason === null ? undefined : { details: { reason: session.revoked_reason } },
  );
}

/** `session_expired`, saying which lifetime ran out: the maximum one when it came first. */
export function sessionExpired(session: SessionRow, now: number): RotorError {
  const maxAge = session.max_expires_at !== null && session.max_expires_at <= now;
  const reason: SessionEndReason =
    maxAge && session.max_expires_at! <= session.idle_expires_at ? 'max_age' : 'idle';
  return new RotorError('session_expired', 'This session has expired; sign in again.', {
    details: { reason },
  });
}

/** Throws `session_revoked` or `session_expired` unless the session is usable at `now`. */
export function assertSessionActive(session: SessionRow, now: number): void {
  if (session.revoked_at !== null) throw sessionRevoked(session);
  if (sessionEndsAt(session) <= now) throw sessionExpired(session, now);
}
