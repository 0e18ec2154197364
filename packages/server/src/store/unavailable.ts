/** SQLite result codes, Node socket errors and PostgreSQL SQLSTATE classes that mean "try later". */
const CODES =
  /^(SQLITE_(BUSY|LOCKED|READONLY|IOERR|CANTOPEN|FULL|PROTOCOL|NOTADB|CORRUPT)|EAGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE|EAI_AGAIN|08...|53...|57P0[1-3]|57014|40001|40P01|25006)/;

/** node-postgres and ioredis (the rate-limit store) raise these without a code. */
const MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error and is not queryable|Client was closed|Cannot use a pool after calling end|driver has already been destroyed|max retries per request|Connection is closed|Command timed out|Stream isn't writeable/;

/**
 * Whether an error means the database cannot be reached or cannot write right now (answered as
 * `503 unavailable`), rather than a bug. Walks `cause` chains.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CODES.test(code)) return true;
    if (MESSAGES.test(e.message)) return true;
  }
  return false;
}
