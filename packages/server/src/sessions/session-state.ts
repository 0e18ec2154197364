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

/**
 * Whether a lifetime of the session has run out at `now` (milliseconds since the epoch), revoked
 * or not: idle expiry or maximum age, whichever comes first (`sessionEndsAt`).
 */
export function sessionHasExpired(session: SessionRow, now: number): boolean {
  return sessionEndsAt(session) <= now;
}

/**
 * Why the session is not usable at `now` (milliseconds since the epoch): `session_revoked` when it
 * was revoked, else `session_expired` when a lifetime ran out; undefined while it is live. The one
 * liveness rule: every check of a session (refresh, access, introspection, password change) asks
 * this, so a revoked session is never answered as expired in one place and live in another.
 */
export function sessionEndError(session: SessionRow, now: number): RotorError | undefined {
  if (session.revoked_at !== null) return sessionRevoked(session);
  if (sessionHasExpired(session, now)) return sessionExpired(session, now);
  return undefined;
}

/** Whether the session is usable at `now`: neither revoked nor expired (`sessionEndError`). */
export function isSessionLive(session: SessionRow, now: number): boolean {
  return sessionEndError(session, now) === undefined;
}

/** Throws `session_revoked` or `session_expired` unless the session is usable at `now`. */
export function assertSessionActive(session: SessionRow, now: number): void {
  const ended = sessionEndError(session, now);
  if (ended) throw ended;
}
