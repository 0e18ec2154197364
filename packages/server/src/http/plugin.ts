import fastifyCookie from '@fastify/cookie';
import type {
  FastifyContextConfig,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  preHandlerAsyncHookHandler,
} from 'fastify';
import type { RotorConfig } from '../config/load-config.js';
import { startJobs } from '../engine/jobs.js';
import { RotorError } from '../errors.js';
import { createRotor, type CreateRotorOptions, type Rotor } from '../rotor.js';
import { VERSION } from '../version.js';
import { accountRoutes } from './account-routes.js';
import { adminRoutes } from './admin-routes.js';
import { mailboxRoutes } from './mailbox-routes.js';
import { authRoutes } from './auth-routes.js';
import { installClientAddress } from './client-address.js';
import { corsPolicy } from './cors.js';
import { assertSameOrigin } from './csrf.js';
import { ACCESS_COOKIE, assertNoRepeatedRotorCookie } from './delivery.js';
import { demoRoutes, findDemoDir } from './demo-routes.js';
import { createErrorHandler, sendError } from './error-handler.js';
import { trackAllowedMethods } from './method-not-allowed.js';
import { installMetrics } from './metrics.js';
import { oauthRoutes } from './oauth-routes.js';
import { installOpenApi } from './openapi.js';
import { requireSessionHandler } from './require-session.js';
import { addResponseSchemas } from './response-schemas.js';
import { trackRouteAnswers } from './route-answers.js';
import { systemRoutes } from './system-routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The engine behind the Rotor routes of this instance (set by {@link rotorPlugin}). */
    rotor: Rotor;
    /**
     * A preHandler for the application's own routes: sets `request.session`, `request.user` and
     * `request.claims` from the caller's access token, checked against the store (a revocation
     * counts at once), or answers `401` in Rotor's JSON shape with `WWW-Authenticate`.
     */
    requireSession: preHandlerAsyncHookHandler;
  }
  interface FastifyContextConfig {
    /** The route is authenticated by a cookie: run the CSRF check on it. */
    csrf?: boolean;
    /** A hidden route still listed by `GET /` among the endpoints (/metrics, /openapi.json, /docs). */
    listed?: boolean;
  }
}

/** Where {@link rotorPlugin} gets its engine: one built already, or a configuration to build one. */
export type RotorSource = { rotor: Rotor } | ({ config: RotorConfig } & CreateRotorOptions);

/** What Rotor's routes include besides the API; defaults are those of an embedded Rotor. */
export interface RotorRouteOptions {
  /**
   * The path Rotor's routes go under (`/rotor` → `/rotor/auth/login`); '' or absent for the root.
   * The refresh and device cookies are scoped to it; set `ROTOR_ISSUER` to the URL it is served at.
   */
  prefix?: string;
  /** Serve the demo page at the prefix when `@rotor/demo` is installed (default false). */
  demo?: boolean;
  /** `GET /openapi.json` and `GET /docs` (default true). */
  openapi?: boolean;
  /** `GET /metrics` and the request metrics, on a registry of this Rotor's own (default true). */
  metrics?: boolean;
}

export type RotorPluginOptions = RotorSource & RotorRouteOptions;

/**
 * The headers on every response of Rotor's routes: the security headers and the request id. One
 * `reply.header` each with its name written lowercase, measured a little cheaper than
 * `reply.headers({...})` (which walks the object's keys, then calls `reply.header` for each).
 */
function setConstantHeaders(reply: FastifyReply, requestId: string): void {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('x-frame-options', 'DENY');
  reply.header('cross-origin-resource-policy', 'same-origin');
  reply.header('x-request-id', requestId);
}

/** API.md: request bodies are limited to 64 KiB. */
export const BODY_LIMIT = 64 * 1024;

/**
 * Rotor as a Fastify plugin: its routes under `prefix` in the application's own instance, and
 * `app.rotor` and `app.requireSession` for the application's routes. Rotor's hooks (security
 * headers, CORS, CSRF, the cookie checks, the JSON-only body parser and its 64 KiB limit, its
 * error, 404 and 405 answers) stay inside its routes' encapsulation context: the application's own
 * routes never see them. Starts the background jobs (engine/jobs.ts); closing the application
 * stops them and closes the engine when the plugin built it.
 * @example
 * await app.register(rotorPlugin, { config: loadConfig(), prefix: '/rotor' });
 * app.get('/notes', { preHandler: app.requireSession }, async (request) => notesOf(request.user!.id));
 */
export const rotorPlugin: FastifyPluginAsync<RotorPluginOptions> = Object.assign(
  (app: FastifyInstance, options: RotorPluginOptions) => installRotor(app, options, true),
  // Fastify's documented way out of encapsulation (what fastify-plugin sets): the decorators land
  // on the application's instance; Rotor's hooks live in the child `rotorRoutes` is registered in.
  { [Symbol.for('skip-override')]: true },
);

/**
 * Installs Rotor on `app`: the engine (built or given), the decorators, the background jobs and the
 * routes. `encapsulate` puts the routes and their hooks in a child context at `options.prefix`
 * ({@link rotorPlugin}); without it they go on `app` itself, so every route of `app` gets Rotor's
 * hooks: the standalone server (create-server.ts), whose routes are all Rotor's.
 */
export async function installRotor(
  app: FastifyInstance,
  options: RotorPluginOptions,
  encapsulate: boolean,
): Promise<void> {
  const { rotor, owned } = await engineOf(app, options);
  app.decorate('rotor', rotor);
  app.decorate('requireSession', requireSessionHandler(rotor));
  for (const name of ['rotor', 'session', 'user', 'claims'] as const) {
    if (!app.hasRequestDecorator(name)) app.decorateRequest(name, undefined);
  }
  const stopJobs = startJobs(rotor, app.log);
  app.addHook('onClose', async () => {
    stopJobs();
    if (owned) await rotor.close();
  });
  const { prefix = '', demo = false, openapi = true, metrics = true } = options;
  // The standalone server logs one line per request, refusals included (request-log.ts); a mounted
  // Rotor leaves request logging to the application, and logs its refusals' codes itself.
  const routeOptions = { rotor, demo, openapi, metrics, requestLine: !encapsulate };
  if (encapsulate) await app.register(rotorRoutes, { ...routeOptions, prefix });
  else await rotorRoutes(app, routeOptions);
}

async function engineOf(
  app: FastifyInstance,
  options: RotorPluginOptions,
): Promise<{ rotor: Rotor; owned: boolean }> {
  if ('rotor' in options) return { rotor: options.rotor, owned: false };
  // Every engine option goes on, not a list of them kept here: the app's `users` and `claims` were
  // once left behind, so a mounted Rotor (and `createServer`) ignored them. The route options that
  // ride along are unknown to createRotor, which ignores them.
  const { config, onIdleError, ...engine } = options;
  const rotor = await createRotor(config, {
    ...engine,
    // What no request answers for (mail that failed, work after an answer) goes to the app's log.
    log: engine.log ?? app.log,
    onIdleError:
      onIdleError ?? ((error) => app.log.warn({ err: error }, 'idle database connection lost')),
  });
  return { rotor, owned: true };
}

/** Rotor's routes and every hook they need, in their own encapsulation context (at `prefix`). */
async function rotorRoutes(
  app: FastifyInstance,
  options: { rotor: Rotor; requestLine: boolean } & Required<Omit<RotorRouteOptions, 'prefix'>>,
): Promise<void> {
  const { rotor } = options;
  const { config } = rotor;
  const prefix = app.prefix;
  const loginUrl = `${prefix}/auth/login`;
  const authUrls = `${prefix}/auth/`;
  installClientAddress(app, config.trustProxy);
  // Rotor's limit on its own routes, whatever the application allows on its routes.
  app.addHook('onRoute', (route) => {
    route.bodyLimit ??= BODY_LIMIT;
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

  // An application that parses cookies already lends its parser (a second one would clash).
  // Rotor's own parses in Rotor's hook below (`hook: false`): a hook of its own would be one more
  // dispatch on every request, and it allocated a map per request for cookies to set.
  if (!app.hasRequestDecorator('cookies')) await app.register(fastifyCookie, { hook: false });
  // Front ends on another allowed origin (another port in development, app.example.com beside
  // auth.example.com) call Rotor with credentials; every other origin gets no CORS headers.
  const cors = corsPolicy({
    origins: config.allowedOrigins,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['Content-Type', 'Authorization', 'Token-Delivery', 'DPoP'],
    exposedHeaders: ['WWW-Authenticate', 'Retry-After', 'X-Request-Id', 'DPoP-Nonce'],
    maxAge: 600,
  });

  const dpopNonces = rotor.dpop.nonces;
  // One callback-style hook for what every request needs: an async hook, or one per concern, costs
  // a promise or a hook dispatch on each request (measured in bench/).
  app.addHook('onRequest', (request, reply, done) => {
    const cookie = request.headers.cookie;
    // Unless the application's parser ran already (its own @fastify/cookie, on `onRequest`).
    request.cookies ??= cookie === undefined ? {} : app.parseCookie(cookie);
    setConstantHeaders(reply, request.id);
    if (cors(request, reply)) return;
    if (request.url.startsWith(authUrls)) reply.header('cache-control', 'no-store');
    // RFC 9449 §8: a fresh nonce on every answer to a request that made a proof, refusals too.
    if (dpopNonces !== undefined && request.headers.dpop !== undefined) {
      reply.header('dpop-nonce', dpopNonces.current());
    }
    // API.md: the CSRF check comes first on every cookie-authenticated request.
    if (request.routeOptions.config?.csrf || request.cookies[ACCESS_COOKIE] !== undefined) {
      assertSameOrigin(request, config.allowedOrigins);
    }
    // A Rotor cookie sent twice (cookie tossing) is refused before any route reads the first one.
    // Requests without a Rotor cookie pay only this substring test.
    // The login reads no token cookie: a tossed one must not block signing in (it is no sign-in).
    if (cookie !== undefined && cookie.includes('rotor_') && request.url !== loginUrl) {
      assertNoRepeatedRotorCookie(cookie);
    }
    done();
  });

  app.setErrorHandler(createErrorHandler({ refusalsLogged: !options.requestLine }));
  // Every route is registered below this line, so the lookups see them all.
  const allowedMethods = trackAllowedMethods(app);
  const endpoints = trackEndpoints(app);
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
  if (options.metrics) installMetrics(app, rotor);
  if (options.openapi) await installOpenApi(app, VERSION);

  const demoDir = options.demo ? findDemoDir() : undefined;
  await app.register(systemRoutes, { rotor, demo: demoDir !== undefined, endpoints });
  if (demoDir) await app.register(demoRoutes, { dir: demoDir });
  await app.register(authRoutes, { rotor });
  await app.register(accountRoutes, { rotor });
  // The development outbox's page (issue 17): only while mail is not really sent, loopback only.
  if (rotor.outbox) {
    // Said once at start: in production the outbox would keep users' reset links in the log.
    app.log.warn(
      'ROTOR_SMTP_URL is unset: account mails go to the development outbox (logged with their links, listed at /dev/mailbox for loopback clients); set ROTOR_SMTP_URL for real mail',
    );
    await app.register(mailboxRoutes, { outbox: rotor.outbox });
  }
  await app.register(oauthRoutes, { rotor });
  // Issue 16: only with ROTOR_ADMIN_TOKEN set; else /admin/* is as unknown as any other path.
  if (rotor.config.adminToken !== undefined) {
    await app.register(adminRoutes, { rotor, token: rotor.config.adminToken });
  }
}

/**
 * The endpoints `GET /` lists, read from the routes as they register (`onRoute`), so the list
 * cannot drift from them: every route `/openapi.json` documents (it declares its answers) and the
 * hidden ones marked `listed`, as `METHOD /path`, in registration order. The routes' options are
 * read when the list is, after every hook (a nested plugin's runs after this one) has marked them.
 */
function trackEndpoints(app: FastifyInstance): () => readonly string[] {
  const routes: { method: string | string[]; url: string; config?: FastifyContextConfig }[] = [];
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  return () => {
    const list = new Set<string>();
    for (const route of routes) {
      if (route.config?.answers === undefined && route.config?.listed !== true) continue;
      for (const method of [route.method].flat()) {
        // `/docs/` and `/docs` are one endpoint (a prefixed plugin's `/` registers both).
        const url = route.url.length > 1 ? route.url.replace(/\/$/, '') : route.url;
        if (method.toUpperCase() !== 'HEAD') list.add(`${method.toUpperCase()} ${url}`);
      }
    }
    return [...list];
  };
}
