import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { ExternalChanges } from '../changes.js';
import type { Database } from '../schema.js';
import { postgresChanges } from './postgres-changes.js';

export interface PostgresOptions {
  /** Connections per instance. */
  poolSize: number;
  /** Told about connections that fail while idle (a database restart), instead of crashing. */
  onIdleError?: (error: Error) => void;
  /** The `LISTEN` channel of session-state changes (`RotorNames.channel`). */
  channel?: string;
}

/** How long a request may wait for a connection or a statement before it answers `503`. */
const CONNECT_TIMEOUT_MS = 3_000;
const STATEMENT_TIMEOUT_MS = 5_000;

/**
 * Opens a PostgreSQL pool for Rotor. Every wait is bounded, so an outage answers `503 unavailable`
 * quickly instead of hanging requests; the pool reconnects by itself when the database returns.
 */
export function openPostgres(
  url: string,
  options: PostgresOptions,
): { db: Kysely<Database>; changes: ExternalChanges } {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: STATEMENT_TIMEOUT_MS + 1_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    idle_in_transaction_session_timeout: STATEMENT_TIMEOUT_MS * 2,
    idleTimeoutMillis: 30_000,
    application_name: 'rotor',
  });
  // A connection the server drops (restart, failover) emits 'error'; with no listener Node would
  // crash the process. The pool listens on idle connections only, so listen on every connection:
  // the query in flight, if any, fails on its own and answers 503.
  const report = (error: Error) => options.onIdleError?.(error);
  pool.on('error', report);
  pool.on('connect', (client) => client.on('error', report));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, changes: postgresChanges(url, report, options.channel) };
}
