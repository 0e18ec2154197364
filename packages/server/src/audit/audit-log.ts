import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import {
  decodeCursor,
  encodeCursor,
  pageLimit,
  type Page,
  type PageRequest,
} from '../lib/paging.js';
import { storableHeaderText } from '../lib/plain-text.js';
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
  | 'session_evicted'
  /** The app's backend asked for a login ticket of the user (admin API; issue 16). */
  | 'login_ticket_issued'
  /** The app's backend created the user, without a password (admin API; issue 16). */
  | 'user_created'
  /** A reset link was mailed to the account (issue 17; not written for an unknown address). */
  | 'password_reset_requested'
  /** The password was set from a reset link; every session ended. */
  | 'password_reset'
  /** The address was proven by its verification link. */
  | 'email_verified'
  /** A signed-in caller asked to move the account to another address (confirmation mailed). */
  | 'email_change_requested'
  /** The new address's link confirmed the change. */
  | 'email_changed'
  /** The old address's link undid a change; every session ended. */
  | 'email_change_undone'
  /**
   * A refresh token of a session bound to a key (DPoP, issue 18) came without a proof by that
   * key: refused, and the session lives on (a thief without the key cannot end it).
   */
  | 'dpop_key_mismatch';

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
      // Stripped of control characters here too: an embedding app's values reach no query raw.
      ip: storableHeaderText(event.ip),
      user_agent: storableHeaderText(event.userAgent),
      session_id: event.sessionId ?? null,
    });
  }

  /**
   * A page of a user's events, newest first. The cursor carries the id of the page's last event:
   * ids sort by time, so the next page is the events with smaller ids, however many were written
   * since (55 failed logins cannot push an older success out of reach).
   */
  async list(userId: string, page: PageRequest = {}): Promise<Page<EventRow>> {
    const limit = pageLimit(page.limit);
    const after = page.cursor ? decodeCursor(EVENT_CURSOR, page.cursor, [isEventId])[0] : undefined;
    const { rows, more } = await this.#store.listUserEvents(userId, { limit, after });
    const last = rows.at(-1);
    return { items: rows, nextCursor: more && last ? encodeCursor(EVENT_CURSOR, [last.id]) : null };
  }
}

const EVENT_CURSOR = 'e';
const TIME_DIGITS = 9;
/** {@link eventIdPrefix}, a 4-digit sequence, then 6 random bytes in base64url. */
const EVENT_ID = /^[0-9a-z]{13}[A-Za-z0-9_-]{8}$/;

/** Event ids begin with their time, fixed width, so ids sort (and range-delete) by time. */
export function eventIdPrefix(at: number): string {
  return at.toString(36).padStart(TIME_DIGITS, '0');
}

/** The time an event id begins with, in milliseconds since the epoch. */
export function eventIdTime(id: string): number {
  return parseInt(id.slice(0, TIME_DIGITS), 36);
}

/** Whether `value` has the shape of the ids {@link AuditLog.record} writes. */
export function isEventId(value: string): boolean {
  return EVENT_ID.test(value);
}
