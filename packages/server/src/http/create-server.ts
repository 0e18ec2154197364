import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
} from 'fastify';
import type { RotorConfig } from '../config/load-config.js';
import type { CreateRotorOptions } from '../rotor.js';
import { clientErrorHandler } from './client-errors.js';
import { findDemoDir } from './demo-routes.js';
import { sendError, toRotorError } from './error-handler.js';
import { lazyChildLoggerFactory } from './lazy-logger.js';
import { BODY_LIMIT, installRotor } from './plugin.js';
import { requestIdGenerator } from './request-id.js';
import { RequestLogController } from './request-log.js';
import { flushLogSync, serverLoggers } from './server-log.js';

/**
 * How often Node looks for requests past `ROTOR_HEADERS_TIMEOUT` or `ROTOR_REQUEST_TIMEOUT`. Node
 * checks only every `connectionsCheckingInterval` (30 s by default), so a 10 s timeout would really
 * be up to 40 s; once a second the check walks the open connections, which costs next to nothing.
 */
const TIMEOUT_CHECK_MS = 1000;

/**
 * Idle keep-alive sockets close after this long, Fastify's default written out: longer than the 60 s
 * idle timeout of common load balancers (AWS ALB, nginx's upstream keepalive_timeout), so the
 * balancer closes an idle connection first and never sends a request on one Rotor is closing (a 502).
 */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

export interface CreateServerOptions extends CreateRotorOptions {
  /**
   * pino options, or false for no logs (tests). Defaults to JSON logs at `config.logLevel` on
   * stdout, written asynchronously (server-log.ts). Either way a request writes one line at `info`
   * (request-log.ts).
   */
  logger?: FastifyServerOptions['logger'];
}

/**
 * Builds the standalone Rotor HTTP server (not yet listening) on its own engine: Fastify with the
 * service's server options (timeouts, logs, body limit) and Rotor installed at its root (plugin.ts).
 * Closing the server closes the engine and, when it opened it, the store.
 * @example
 * const app = await createServer(loadConfig());
 * await app.listen({ host: '127.0.0.1', port: 3000 });
 */
export async function createServer(
  config: RotorConfig,
  options: CreateServerOptions = {},
): Promise<FastifyInstance> {
  const { logger, ...engine } = options;
  // Rotor's one line per request (request-log.ts) in place of Fastify's two.
  const requestLog = new RequestLogController();
  // Without a logger of the caller's: JSON lines on stdout, written asynchronously (server-log.ts).
  const own = logger === undefined ? serverLoggers(config.logLevel) : undefined;
  const app = Fastify({
    ...(own === undefined ? { logger } : { loggerInstance: own.log as FastifyBaseLogger }),
    logController: requestLog,
    bodyLimit: BODY_LIMIT,
    // The client address is Rotor's own (client-address.ts, ROTOR_TRUST_PROXY); request.ip stays
    // the socket's peer, so nothing reads a client-written X-Forwarded-For by mistake.
    trustProxy: false,
    // Slow clients (slowloris) are cut: the headers within ROTOR_HEADERS_TIMEOUT, the whole request
    // within ROTOR_REQUEST_TIMEOUT (Node answers 408 and closes). Fastify sets requestTimeout on the
    // server itself after creating it, so it goes here; the rest reaches http.createServer.
    requestTimeout: config.requestTimeoutSeconds * 1000,
    http: {
      headersTimeout: config.headersTimeoutSeconds * 1000,
      requestTimeout: config.requestTimeoutSeconds * 1000,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
    },
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // No socket inactivity timeout (connectionTimeout 0): a request arriving is bounded by the two
    // timeouts above, an idle socket by keepAliveTimeout, and answers are small and quick.
    connectionTimeout: 0,
    genReqId: requestIdGenerator(),
    childLoggerFactory: lazyChildLoggerFactory,
    requestIdHeader: false,
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    clientErrorHandler,
    frameworkErrors: (error, _request, reply) => {
      sendError(toRotorError(error), reply);
    },
  });
  requestLog.attach(app.log, own?.writeRequestLine);
  // onClose hooks run last registered first: this one, registered before Rotor's, writes their
  // lines too.
  if (own !== undefined) app.addHook('onClose', async () => flushLogSync(app.log));
  // The service is one user of the plugin: its routes at the root, not encapsulated (every route of
  // the server is Rotor's, also one added later), the demo page when installed.
  await installRotor(app, { ...engine, config, demo: findDemoDir() !== undefined }, false);
  return app;
}
