import type { FastifyBaseLogger } from 'fastify';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import type { RequestLineWriter } from './request-log.js';

/** Never a token, cookie or password in a log line (DESIGN.md, 5). */
const REDACT = {
  paths: [
    'req.headers.authorization',
    'req.headers.cookie',
    'res.headers["set-cookie"]',
    '*.password',
    '*.refreshToken',
    '*.accessToken',
    '*.newPassword',
    '*.currentPassword',
    '*.token',
  ],
  censor: '[redacted]',
};

/**
 * Lines are written once this much is pending: a write per line cost a fifth of the server's time
 * at `info` under load (an fs.write handed to libuv's thread pool per line, sharing the core).
 */
const BATCH_BYTES = 4096;
/** ...and at least this often, so an idle server's last lines do not wait for the next burst. */
const FLUSH_EVERY_MS = 200;

/**
 * The standalone server's loggers: JSON lines on stdout at `level`, written asynchronously (pino's
 * `sync: false` destination, docs/asynchronous.md of pino): lines are batched ({@link BATCH_BYTES},
 * at most {@link FLUSH_EVERY_MS} late) and handed to the kernel by a background write instead of
 * blocking the event loop on stdout. What is pending is written on exit (pino flushes on `exit`),
 * on `app.close()` ({@link flushLogSync}), on `SIGTERM`/`SIGINT` ({@link endLog}) and before a
 * crash exits (`rotor serve`, cli/main.ts).
 *
 * The request line (request-log.ts) is written by `writeRequestLine`, straight to the same
 * destination in pino's shape (`level`, `time`, `pid`, `hostname`, the fields, `msg`): its fields
 * are fixed and hold no secret, and pino's redaction (which walks every logged object) and
 * serialization were a tenth of the server's time at `info` on a trivial route.
 * @example
 * const { log, writeRequestLine } = serverLoggers('info');
 * const app = Fastify({ loggerInstance: log });
 */
export function serverLoggers(level: string): {
  log: Logger;
  writeRequestLine: RequestLineWriter;
} {
  const destination = pino.destination({
    dest: 1,
    sync: false,
    minLength: BATCH_BYTES,
    periodicFlush: FLUSH_EVERY_MS,
  });
  const log = pino({ level, redact: REDACT }, destination);
  const origin = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`;
  const writeRequestLine: RequestLineWriter = (line) => {
    const error = line.error === undefined ? '' : `,"error":${JSON.stringify(line.error)}`;
    const ms = Number.isFinite(line.responseTimeMs) ? line.responseTimeMs : null;
    destination.write(
      `{"level":30,"time":${Date.now()}${origin},"reqId":${JSON.stringify(line.reqId)},"method":${JSON.stringify(line.method)},"url":${JSON.stringify(line.url)},"route":${JSON.stringify(line.route)},"status":${line.status},"responseTimeMs":${ms}${error},"msg":"request completed"}\n`,
    );
  };
  return { log, writeRequestLine };
}

/** What {@link flushLogSync} and {@link endLog} use of pino's asynchronous destination (SonicBoom). */
interface AsyncDestination {
  flushSync(): void;
  end(): void;
  once(event: 'close' | 'error', listener: () => void): void;
}

/** The asynchronous destination behind `log`, when it has one (a logger of {@link serverLoggers}). */
function destinationOf(log: FastifyBaseLogger): AsyncDestination | undefined {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  return typeof stream === 'object' && stream !== null && 'flushSync' in stream && 'end' in stream
    ? (stream as AsyncDestination)
    : undefined;
}

/**
 * Writes what `log` still holds, synchronously: where the process may end before another turn of
 * the event loop (a crash about to exit). Never throws; a logger without an asynchronous
 * destination has nothing pending.
 */
export function flushLogSync(log: FastifyBaseLogger): void {
  const stream = destinationOf(log);
  try {
    stream?.flushSync();
  } catch {
    // Closed already, or stdout gone: nothing more can be written.
  }
}

/**
 * Resolves once every line `log` was given has been written, the write under way included (which
 * {@link flushLogSync} does not wait for), then stops the destination: the last step of a graceful
 * stop, right before the process exits. Gives up after `timeoutMs` (stdout nobody reads).
 */
export function endLog(log: FastifyBaseLogger, timeoutMs = 5000): Promise<void> {
  const stream = destinationOf(log);
  if (stream === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    stream.once('close', done);
    stream.once('error', done);
    try {
      stream.end();
    } catch {
      done();
    }
  });
}
