import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { RotorConfig } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { createRotor, type CreateRotorOptions, type Rotor } from '../rotor.js';
import { adminRoutes } from './admin-routes.js';
import { authRoutes } from './auth-routes.js';
import { installClientAddress } from './client-address.js';
import { clientErrorHandler } from './client-errors.js';
import { corsPolicy } from './cors.js';
import { assertSameOrigin } from './csrf.js';
import { ACCESS_COOKIE, assertNoRepeatedRotorCookie } from './delivery.js';
import { errorHandler, sendError, toRotorError } from './error-handler.js';
import { lazyChildLoggerFactory } from './lazy-logger.js';
import { trackAllowedMethods } from './method-not-allowed.js';
import { installMetrics } from './metrics.js';
import { installOpenApi } from './openapi.js';
import { addResponseSchemas } from './response-schemas.js';
import { trackRouteAnswers } from './route-answers.js';
import { VERSION } from '../version.js';
import { demoRoutes, findDemoDir } from './demo-routes.js';
import { oauthRoutes } from './oauth-routes.js';
import { systemRoutes } from './system-routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The engine behind this server. */
    rotor: Rotor;
  }
  interface FastifyContextConfig {
    /** The route is authenticated by a cookie: run the CSRF check on it. */
    csrf?: boolean;
  }
}

/** On every response. */
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
} as const;

/** API.md: request bodies are limited to 64 KiB. */
const BODY_LIMIT = 64 * 1024;

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
  /** pino options, or false for no logs (tests). Defaults to JSON logs at `config.logLevel`. */
  logger?: FastifyServerOptions['logger'];
}

/**
 * Builds a Rotor HTTP server (not yet listening) on its own engine. Closing the server closes the
 * engine and, when it opened it, the store.
 * @example
 * const app = await createServer(loadConfig());
 * await app.listen({ host: '127.0.0.1', port: 3000 });
 */
export async function createServer(
  config: RotorConfig,
  options: CreateServerOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? {
      level: config.logLevel,
      // Never a token, cookie or password in a log line (DESIGN.md, 5).
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'res.headers["set-cookie"]',
          '*.password',
          '*.refreshToken',
          '*.accessToken',
        ],
        censor: '[redacted]',
      },
    },
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
    genReqId: () => randomUUID(),
    childLoggerFactory: lazyChildLoggerFactory,
    requestIdHeader: false,
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    clientErrorHandler,
    frameworkErrors: (error, _request, reply) => {
      sendError(toRotorError(error), reply);
    },
  });
  const rotor = await createRotor(config, {
    ...options,
    onIdleError:
      options.onIdleError ??
      ((error) => app.log.warn({ err: error }, 'idle database connection lost')),
  });
  app.decorate('rotor', rotor);
  installClientAddress(app, config.trustProxy);
  const stopPruning = schedulePruning(app, rotor);
  const stopRotating = scheduleKeyRotation(app, rotor);
  app.addHook('onClose', async () => {
    stopPruning();
    stopRotating();
    await rotor.close();
  });

  // Only JSON bodies; an empty body counts as none, so a bodiless refresh with a JSON content type
  // works. Fastify's own parser keeps its prototype-poisoning protection.
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === ''))
      return done(null, undefined);
    parseJson(request, body as string, done);
  });

  await app.register(fastifyCookie);
  // Front ends on another allowed origin (another port in development, app.example.com beside
  // auth.example.com) call Rotor with credentials; every other origin gets no CORS headers.
  const cors = corsPolicy({
    origins: config.allowedOrigins,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['Content-Type', 'Authorization', 'Token-Delivery'],
    exposedHeaders: ['WWW-Authenticate', 'Retry-After', 'X-Request-Id'],
    maxAge: 600,
  });

  // One callback-style hook for what every request needs: an async hook, or one per concern, costs
  // a promise or a hook dispatch on each request (measured in bench/).
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('x-request-id', request.id);
    if (cors(request, reply)) return;
    if (request.url.startsWith('/auth/')) reply.header('cache-control', 'no-store');
    // API.md: the CSRF check comes first on every cookie-authenticated request.
    if (request.routeOptions.config?.csrf || request.cookies[ACCESS_COOKIE] !== undefined) {
      assertSameOrigin(request, config.allowedOrigins);
    }
    // A Rotor cookie sent twice (cookie tossing) is refused before any route reads the first one.
    // Requests without a Rotor cookie pay only this substring test.
    // The login reads no token cookie: a tossed one must not block signing in (it is no sign-in).
    const cookie = request.headers.cookie;
    if (cookie !== undefined && cookie.includes('rotor_') && request.url !== '/auth/login') {
      assertNoRepeatedRotorCookie(cookie);
    }
    done();
  });

  app.setErrorHandler(errorHandler);
  // Every route is registered below this line, so the lookup sees them all.
  const allowedMethods = trackAllowedMethods(app);
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = allowedMethods(path);
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      sendError(
        new RotorError(
          'method_not_allowed',
          `${request.method} is not allowed on ${path.slice(0, 200)}; use ${allowed.join(', ')}.`,
        ),
        reply,
      );
      return;
    }
    sendError(
      new RotorError('not_found', `No route ${request.method} ${path.slice(0, 200)}.`),
      reply,
    );
  });

  // Route schemas' `response` describes the answers for /openapi.json (route-answers.ts) and is
  // never a filter: a compiled serializer would drop the fields it does not list and coerce the
  // rest, so every answer is serialized as the handler built it, as without a response schema.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  addResponseSchemas(app);
  trackRouteAnswers(app);
  installMetrics(app, rotor);
  await installOpenApi(app, VERSION);

  const demoDir = findDemoDir();
  await app.register(systemRoutes, { rotor, demo: demoDir !== undefined });
  if (demoDir) await app.register(demoRoutes, { dir: demoDir });
  await app.register(authRoutes, { rotor });
  await app.register(oauthRoutes, { rotor });
  // Issue 16: only with ROTOR_ADMIN_TOKEN set; else /admin/* is as unknown as any other path.
  if (rotor.config.adminToken !== undefined) {
    await app.register(adminRoutes, { rotor, token: rotor.config.adminToken });
  }
  return app;
}

/**
 * The retention job: every `ROTOR_PRUNE_INTERVAL`, delete ended sessions and old rotated tokens,
 * logging what went. Instances may run it at once: the deletes are idempotent.
 */
function schedulePruning(app: FastifyInstance, rotor: Rotor): () => void {
  const interval = rotor.config.pruneInterval;
  if (interval === 0) return () => {};
  return repeat(interval * 1000, async () => {
    try {
      const report = await rotor.prune();
      app.log.info({ pruned: report }, 'retention: pruned ended sessions and old tokens');
    } catch (error) {
      app.log.warn({ err: error }, 'retention: pruning failed; will retry');
    }
  });
}

/**
 * The optional key-rotation schedule (`ROTOR_KEY_ROTATION`): when the signing key is that old, a new
 * one takes over. The age is checked after re-reading the keys, so an instance that sees a rotation
 * made elsewhere does not rotate again; two instances rotating in the same instant only publish one
 * extra key, which retires like any other.
 */
function scheduleKeyRotation(app: FastifyInstance, rotor: Rotor): () => void {
  const age = rotor.config.keyRotation * 1000;
  if (age === 0) return () => {};
  const due = () => rotor.clock.now() - rotor.keys.current.createdAt >= age;
  return repeat(Math.min(60_000, Math.max(250, age / 4)), async () => {
    if (!due()) return;
    try {
      await rotor.keys.reload();
      if (!due()) return;
      const key = await rotor.keys.rotate(rotor.config.accessTtl);
      app.log.info({ kid: key.kid }, 'signing key rotated on schedule');
    } catch (error) {
      app.log.warn({ err: error }, 'scheduled key rotation failed; will retry');
    }
  });
}

/**
 * Runs `task` every `ms` in the background, never two at once, without keeping the process alive;
 * returns the function that stops it.
 */
function repeat(ms: number, task: () => Promise<void>): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void task().finally(() => (running = false));
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}
