import pg from 'pg';
import type { ChangeWatch, ExternalChanges, SessionStateListener } from '../changes.js';

/**
 * The channel migration 0003's triggers notify: `s:<session id>` or `u:<user id>`; migration
 * 0006's `k:` when the signing keys change.
 */
export const SESSION_STATE_CHANNEL = 'rotor_session_state';

const CONNECT_TIMEOUT_MS = 3_000;
const RECONNECT_MS = 1_000;

/**
 * Other instances' session revocations and user changes over one dedicated `LISTEN` connection. PostgreSQL
 * sends a notification when the writing transaction commits, so it reaches this instance as fast as
 * one message from the database; the triggers fire for every writer (other instances, the CLI,
 * an operator's SQL). While the connection is down, caches are told everything changed and may not
 * answer (`current()` is false) until it is back and listening again: notifications sent meanwhile
 * are lost, so nothing cached before can be trusted.
 */
export function postgresChanges(
  url: string,
  onError: (error: Error) => void = () => {},
): ExternalChanges {
  const listeners = new Set<SessionStateListener>();
  let client: pg.Client | undefined;
  let listening = false;
  let started = false;
  let closed = false;
  let reported = false;
  let retry: NodeJS.Timeout | undefined;

  const everything = () =>
    listeners.forEach((l) => {
      l.all();
      l.keys();
    });

  function dispatch(payload: string | undefined) {
    const id = payload?.slice(2) ?? '';
    if (payload?.startsWith('s:')) listeners.forEach((l) => l.session(id));
    else if (payload?.startsWith('u:')) listeners.forEach((l) => l.user(id));
    else if (payload?.startsWith('k:')) listeners.forEach((l) => l.keys());
    else everything();
  }

  function lost(attempt: pg.Client, error?: Error) {
    if (client !== attempt) return;
    client = undefined;
    listening = false;
    everything();
    // One report per outage, not one per failed reconnection.
    if (error && !reported) onError(error);
    reported = true;
    attempt.end().catch(() => {});
    if (!closed) retry = setTimeout(connect, RECONNECT_MS).unref();
  }

  async function connect() {
    const attempt = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: 'rotor-listen',
    });
    client = attempt;
    attempt.on('error', (error) => lost(attempt, error));
    attempt.on('end', () => lost(attempt));
    attempt.on('notification', (message) => dispatch(message.payload));
    try {
      await attempt.connect();
      await attempt.query(`LISTEN ${SESSION_STATE_CHANNEL}`);
    } catch (error) {
      lost(attempt, error as Error);
      return;
    }
    if (client !== attempt) return;
    if (closed) return void attempt.end().catch(() => {});
    everything();
    listening = true;
    reported = false;
  }

  async function stop() {
    closed = true;
    clearTimeout(retry);
    const last = client;
    client = undefined;
    listening = false;
    await last?.end().catch(() => {});
  }

  return {
    watch(listener): ChangeWatch {
      listeners.add(listener);
      if (!started) {
        started = true;
        void connect();
      }
      return {
        current: () => listening,
        close: async () => {
          listeners.delete(listener);
        },
      };
    },
    close: stop,
  };
}
