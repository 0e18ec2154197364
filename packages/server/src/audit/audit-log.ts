import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { EventRow, Store } from '../store/store.js';

/** The security events Rotor records (docs/security.md, "Audit log"). */
export type AuditEventType =
  | 'login_succeeded'
  | 'login_failed'
  | 'refresh'
  | 'reuse_detected'
  | 'logout'
  | 'logout_all'
  | 'session_revoked'
  | 'password_changed'
  /** A login past `ROTOR_MAX_SESSIONS` ended the user's least recently used session. */
  | 'session_evicted';

export interface AuditEvent {
  type: AuditEventType;
  userId: string | null;
  sessionId?: string | null | undefined;
  ip?: string | null | undefined;
  userAgent?: string | null | undefined;
}

/**
 * Writes security events to the store. Most are written after the action they record, in their
 * own statement, so a failed login leaves its trace even though the request fails; a refresh's is
 * written in the rotation's transaction, the hot path paying for no extra commit. Ids sort by time, then
 * by order of writing in this process, so events of one millisecond list in the order they happened.
 */
export class AuditLog {
  readonly #store: Store;
  readonly #clock: Clock;
  #sequence = 0;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Writes `event`; through `store` when given (a transaction the event must commit with). */
  async record(event: AuditEvent, store: Store = this.#store): Promise<void> {
    const at = this.#clock.now();
    this.#sequence = (this.#sequence + 1) % 36 ** 4;
    const id =
      eventIdPrefix(at) +
      this.#sequence.toString(36).padStart(4, '0') +
      randomBytes(6).toString('base64url');
    await store.insertEvent({
      id,
      user_id: event.userId,
      type: event.type,
      at,
      ip: event.ip ?? null,
      user_agent: event.userAgent?.slice(0, 512) ?? null,
      session_id: event.sessionId ?? null,
    });
  }

  /** A user's most recent events, newest first. */
  list(userId: string, limit = 50): Promise<EventRow[]> {
    return this.#store.listUserEvents(userId, limit);
  }
}

/** Event ids begin with their time, fixed width, so ids sort (and range-delete) by time. */
export function eventIdPrefix(at: number): string {
  return at.toString(36).padStart(9, '0');
}
