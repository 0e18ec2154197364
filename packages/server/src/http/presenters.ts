import { sessionEndsAt } from '../sessions/session-state.js';
import type { EventRow, SessionRow, UserRow } from '../store/store.js';

/**
 * The `user` shape of API.md; never the password hash. `emailVerified`: the address was proven by
 * a link mailed to it (issue 17).
 */
export function presentUser(user: UserRow) {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    emailVerified: user.email_verified_at !== null,
    createdAt: iso(user.created_at),
  };
}

/**
 * A session as an operator sees it (`rotor sessions list`): the `session` shape of API.md without
 * `current`, which only means something to a caller signed in to one of the sessions; `expiresAt`
 * is the earlier of idle expiry and maximum lifetime.
 */
export function presentSessionRecord(session: SessionRow) {
  return {
    id: session.id,
    deviceName: session.device_name,
    userAgent: session.user_agent,
    ip: session.ip,
    createdAt: iso(session.created_at),
    lastUsedAt: iso(session.last_used_at),
    expiresAt: iso(sessionEndsAt(session)),
    // Issue 18: bound to a DPoP key at sign-in (its tokens need proofs by that key).
    dpopBound: session.dpop_jkt !== null,
  };
}

/** The `session` shape of API.md, as the caller signed in to `currentSessionId` sees it. */
export function presentSession(session: SessionRow, currentSessionId: string) {
  return { ...presentSessionRecord(session), current: session.id === currentSessionId };
}

/** One audit-log event of `GET /auth/events` and `rotor events`. */
export function presentEvent(event: EventRow) {
  return {
    type: event.type,
    at: iso(event.at),
    ip: event.ip,
    userAgent: event.user_agent,
    sessionId: event.session_id,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
