import { sessionEndsAt } from '../sessions/session-state.js';
import type { EventRow, SessionRow, UserRow } from '../store/store.js';

/** The `user` shape of API.md; never the password hash. */
export function presentUser(user: UserRow) {
  return { id: user.id, email: user.email, name: user.name, createdAt: iso(user.created_at) };
}

/** The `session` shape of API.md; `expiresAt` is the earlier of idle expiry and maximum lifetime. */
export function presentSession(session: SessionRow, currentSessionId: string | null) {
  return {
    id: session.id,
    deviceName: session.device_name,
    userAgent: session.user_agent,
    ip: session.ip,
    createdAt: iso(session.created_at),
    lastUsedAt: iso(session.last_used_at),
    expiresAt: iso(sessionEndsAt(session)),
    current: session.id === currentSessionId,
  };
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
