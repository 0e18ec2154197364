import {
  LogController,
  type FastifyBaseLogger,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';

/** pino's logger; Fastify's type leaves `isLevelEnabled` out. */
type LevelAwareLogger = FastifyBaseLogger & { isLevelEnabled?(level: string): boolean };

/**
 * The standalone server's request log: one line per request at `info`, written when the response
 * has finished, in place of Fastify's two ("incoming request" and "request completed", which at
 * the default level halved a trivial route's throughput). Fastify calls `requestCompleted` once
 * per request after the `onResponse` hooks, so the line costs no hook of its own.
 *
 * The line: `reqId` (the `x-request-id` of the answer, and the key Fastify binds to the request's
 * other lines), `method`, `url` without its query string (links carry tokens in their queries),
 * `route` (the template, `unmatched` for none), `status`, `responseTimeMs`, and `error`, the code
 * Rotor refused the request with (API.md). No header is logged: no `Authorization`, no cookie.
 *
 * Only `createServer` installs it: an application that mounts Rotor as a plugin keeps its own
 * request logging (its own `logController`), which covers Rotor's routes as its others.
 * @example
 * const requestLog = new RequestLogController();
 * const app = Fastify({ logController: requestLog });
 * requestLog.attach(app.log);
 */
export class RequestLogController extends LogController {
  #log: FastifyBaseLogger | undefined;
  #write: RequestLineWriter | undefined;

  constructor() {
    super({ disableRequestLogging: false });
  }

  /**
   * Writes the request lines to `log`, or by `write` when given (the standalone server's own
   * logger writes them preformatted, server-log.ts). The level is read once, here:
   * `ROTOR_LOG_LEVEL` is fixed for the life of the process, and above `info` a request costs
   * nothing at all.
   */
  attach(log: LevelAwareLogger, write?: RequestLineWriter): void {
    const enabled = log.isLevelEnabled?.('info') === true;
    this.#log = enabled ? log : undefined;
    this.#write = enabled ? (write ?? ((line) => log.info(line, 'request completed'))) : undefined;
  }

  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const write = this.#write;
    if (write === undefined) return;
    const line = requestLine(request, reply);
    if (error) this.#log!.error({ ...line, err: error }, 'request errored');
    else write(line);
  }
}

/** The fields of a request line. */
export type RequestLine = ReturnType<typeof requestLine>;

/** Writes a request line at `info`, message "request completed". */
export type RequestLineWriter = (line: RequestLine) => void;

/** What the request line says of `request` (see {@link RequestLogController}). */
export function requestLine(request: FastifyRequest, reply: FastifyReply) {
  const url = request.url;
  const query = url.indexOf('?');
  return {
    reqId: request.id,
    method: request.method,
    url: query === -1 ? url : url.slice(0, query),
    route: request.routeOptions.url ?? 'unmatched',
    status: reply.statusCode,
    responseTimeMs: Math.round(reply.elapsedTime * 100) / 100,
    error: request.rotorErrorCode,
  };
}
