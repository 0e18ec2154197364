import { Socket } from 'node:net';
import pg from 'pg';
import type { ChangeWatch, ExternalChanges, SessionStateListener } from '../changes.js';

/**
 * The channel migration 0003's triggers notify: `s:<session id>` or `u:<user id>`; migration
 * 0006's `k:` when the signing keys change. This is its name for Rotor's plain names; with a
 * schema or a table prefix it is `RotorNames.channel` (naming.ts).
 */
export const SESSION_STATE_CHANNEL = 'rotor_session_state';

const CONNECT_TIMEOUT_MS = 3_000;
const RECONNECT_MS = 1_000;

/** How often the `LISTEN` connection is asked a trivial query (`SELECT 1`) to prove it delivers. */
export const HEARTBEAT_INTERVAL_MS = 1_000;

/** How long a heartbeat (or the `LISTEN` itself) may go unanswered before the connection is dropped. */
export const HEARTBEAT_TIMEOUT_MS = 2_000;

/**
 * The longest a change committed elsewhere can go unnoticed by the caches of this instance when its
 * `LISTEN` connection dies without closing (3 s): every answered heartbeat proves that each
 * change committed before it was sent has been delivered, and the caches answer only while the last
 * such proof is younger than this. On a healthy connection a change arrives in one message instead.
 */
export const LISTENER_STALE_AFTER_MS = HEARTBEAT_INTERVAL_MS + HEARTBEAT_TIMEOUT_MS;

/**
 * TCP keep-alive on the `LISTEN` connection: a backstop below the heartbeat, so that the operating
 * system also probes a connection that has gone quiet.
 */
const KEEP_ALIVE_DELAY_MS = 5_000;

/** How long a clean goodbye at shutdown may take before the socket is destroyed. */
const END_TIMEOUT_MS = 1_000;

/**
 * Other instances' session revocations and user changes over one dedicated `LISTEN` connection. PostgreSQL
 * sends a notification when the writing transaction commits, so it reaches this instance as fast as
 * one message from the database; the triggers fire for every writer (other instances, the CLI,
 * an operator's SQL). While the connection is down, caches are told everything changed and may not
 * answer (`current()` is false) until it is back and listening again: notifications sent meanwhile
 * are lost, so nothing cached before can be trusted.
 *
 * A connection can also die without closing (a half-open TCP connection: a peer or a middlebox gone
 * silent), and then no error ever comes. So the connection is asked `SELECT 1` every
 * {@link HEARTBEAT_INTERVAL_MS}: PostgreSQL sends pending notifications before a query's answer, so
 * an answered heartbeat proves that every change committed before it was sent has been delivered.
 * `current()` is false as soon as that proof is older than {@link LISTENER_STALE_AFTER_MS} (judged
 * by the clock on each call, not by a timer), and a heartbeat unanswered after
 * {@link HEARTBEAT_TIMEOUT_MS} destroys the socket and reconnects.
 */
export function postgresChanges(
  connection: string | pg.ClientConfig,
  onError: (error: Error) => void = () => {},
  channel: string = SESSION_STATE_CHANNEL,
): ExternalChanges {
  // A URL, or the configuration of an application's pool (`pool.options`) to open one more
  // connection like its own.
  const config = typeof connection === 'string' ? { connectionString: connection } : connection;
  const listeners = new Set<SessionStateListener>();
  let client: pg.Client | undefined;
  let socket: Socket | undefined;
  let listening = false;
  /** When (monotonic ms) the query last answered on the current connection was sent. */
  let confirmedAt = -Infinity;
  let started = false;
  let closed = false;
  let reported = false;
  let retry: NodeJS.Timeout | undefined;
  let nextBeat: NodeJS.Timeout | undefined;

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
    clearTimeout(nextBeat);
    everything();
    // One report per outage, not one per failed reconnection.
    if (error && !reported) onError(error);
    reported = true;
    // Not `end()`: a goodbye on a half-open connection waits forever.
    socket?.destroy();
    socket = undefined;
    if (!closed) retry = setTimeout(connect, RECONNECT_MS).unref();
  }

  /**
   * Runs `sql` on the listening connection and resolves with the time it was sent; no answer within
   * {@link HEARTBEAT_TIMEOUT_MS} drops the connection (which rejects the query).
   */
  async function ask(attempt: pg.Client, sql: string): Promise<number> {
    const sentAt = performance.now();
    const deadline = setTimeout(
      () =>
        lost(
          attempt,
          new Error(`The LISTEN connection did not answer in ${HEARTBEAT_TIMEOUT_MS} ms`),
        ),
      HEARTBEAT_TIMEOUT_MS,
    ).unref();
    try {
      await attempt.query(sql);
      return sentAt;
    } finally {
      clearTimeout(deadline);
    }
  }

  function beat(attempt: pg.Client) {
    if (client !== attempt) return;
    ask(attempt, 'SELECT 1').then(
      (sentAt) => {
        if (client !== attempt) return;
        confirmedAt = sentAt;
        const wait = Math.max(0, sentAt + HEARTBEAT_INTERVAL_MS - performance.now());
        nextBeat = setTimeout(() => beat(attempt), wait).unref();
      },
      // A failed query: the connection's 'error' or 'end', or the deadline, has dropped it.
      () => {},
    );
  }

  async function connect() {
    const stream = new Socket();
    const attempt = new pg.Client({
      ...config,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: 'rotor-listen',
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEP_ALIVE_DELAY_MS,
      stream: () => stream,
    });
    client = attempt;
    socket = stream;
    attempt.on('error', (error) => lost(attempt, error));
    attempt.on('end', () => lost(attempt));
    attempt.on('notification', (message) => dispatch(message.payload));
    let listenedAt: number;
    try {
      await attempt.connect();
      listenedAt = await ask(attempt, `LISTEN ${quoteIdentifier(channel)}`);
    } catch (error) {
      lost(attempt, error as Error);
      return;
    }
    if (client !== attempt) return;
    if (closed) return void attempt.end().catch(() => {});
    everything();
    confirmedAt = listenedAt;
    listening = true;
    reported = false;
    nextBeat = setTimeout(() => beat(attempt), HEARTBEAT_INTERVAL_MS).unref();
  }

  async function stop() {
    closed = true;
    clearTimeout(retry);
    clearTimeout(nextBeat);
    const last = client;
    const lastSocket = socket;
    client = undefined;
    socket = undefined;
    listening = false;
    if (!last) return;
    const force = setTimeout(() => lastSocket?.destroy(), END_TIMEOUT_MS).unref();
    await last.end().catch(() => {});
    clearTimeout(force);
  }

  const current = () => listening && performance.now() - confirmedAt < LISTENER_STALE_AFTER_MS;

  return {
    watch(listener): ChangeWatch {
      listeners.add(listener);
      if (!started) {
        started = true;
        void connect();
      }
      return {
        current,
        close: async () => {
          listeners.delete(listener);
        },
      };
    },
    close: stop,
  };
}

/** A channel name as a quoted identifier (it may hold a `.`: `schema.prefix_rotor_session_state`). */
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
