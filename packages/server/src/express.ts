import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { errorAnswer, toRotorError } from './http/error-handler.js';
import { rotorPlugin, type RotorPluginOptions } from './http/plugin.js';
import {
  principalFromHeaders,
  type SessionHeaders,
  type SessionPrincipal,
} from './http/require-session.js';
import type { Rotor } from './rotor.js';

/** The parts of Express's request the adapters use (no dependency on express). */
interface RequestLike extends IncomingMessage {
  /** Express: the URL before the mount path was stripped from `url`. */
  originalUrl?: string;
  /** Set by a body parser (`express.json()`, `express.urlencoded()`) that ran before Rotor. */
  body?: unknown;
}
type Next = (error?: unknown) => void;

/** Express middleware handing the requests under its prefix to Rotor. */
export interface RotorRouter {
  (request: RequestLike, response: ServerResponse, next: Next): void;
  /** The engine, for {@link requireSession}. */
  readonly rotor: Rotor;
  /** Stops the background jobs and closes the engine (when it was built from `config`). */
  close(): Promise<void>;
}

/**
 * Rotor in an Express application: a middleware that answers every request under `prefix` with
 * Rotor's routes (a Fastify instance's router, on Express's own request and response) and passes
 * every other request on. A body an earlier body parser already read (`express.json()`) is handed
 * to Rotor as it was parsed. Use it at the application's root (`app.use(router)`), or at its prefix
 * (`app.use('/rotor', router)`): the full URL is used either way.
 * @example
 * const rotor = await rotorRouter({ config: loadConfig(), prefix: '/rotor' });
 * app.use(rotor);
 * app.get('/notes', requireSession(rotor), (req, res) => res.json(notesOf(req.user.id)));
 */
export async function rotorRouter(
  options: RotorPluginOptions & { prefix: string; logger?: FastifyServerOptions['logger'] },
): Promise<RotorRouter> {
  const { logger = false, ...plugin } = options;
  const app = Fastify({ logger });
  await app.register(rotorPlugin, plugin);
  await app.ready();
  const { prefix } = options;
  const router = (request: RequestLike, response: ServerResponse, next: Next): void => {
    const url = request.originalUrl ?? request.url ?? '/';
    const path = url.split('?')[0]!;
    if (path !== prefix && !path.startsWith(`${prefix}/`)) return next();
    request.url = url;
    if (!bodyRead(request)) return app.routing(request, response);
    app
      .inject({
        method: request.method as 'POST',
        url,
        headers: withoutLength(request.headers),
        remoteAddress: request.socket.remoteAddress ?? '0.0.0.0',
        ...payloadOf(request),
      })
      .then((answer) => {
        response.statusCode = answer.statusCode;
        for (const [name, value] of Object.entries(answer.headers)) {
          if (value !== undefined) response.setHeader(name, value as string | string[]);
        }
        response.end(answer.rawPayload);
      }, next);
  };
  return Object.assign(router, { rotor: app.rotor, close: () => app.close() });
}

/** Whether the request's body stream was read to its end already (by a body parser). */
function bodyRead(request: RequestLike): boolean {
  return request.readableEnded || (request.complete && !request.readable);
}

/** The body a parser made of the stream, written back in the request's content type. */
function payloadOf(request: RequestLike): { payload?: string | Buffer } {
  const { body } = request;
  if (body === undefined || body === null) return {};
  if (typeof body === 'string' || Buffer.isBuffer(body)) return { payload: body };
  const type = request.headers['content-type'] ?? '';
  if (/^application\/x-www-form-urlencoded/i.test(type)) {
    return { payload: new URLSearchParams(body as Record<string, string>).toString() };
  }
  // express.json() leaves `{}` when there was no body at all.
  if (Object.keys(body).length === 0 && !Number(request.headers['content-length'])) return {};
  return { payload: JSON.stringify(body) };
}

function withoutLength(headers: RequestLike['headers']): Record<string, string | string[]> {
  const copy: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && name !== 'content-length' && name !== 'transfer-encoding') {
      copy[name] = value;
    }
  }
  return copy;
}

/**
 * What {@link requireSession} sets on the request: always `rotor` (the caller's session, account
 * and claims); `session`, `user` and `claims` too, unless express-session or passport own those
 * names on this request (then read `req.rotor`).
 */
export interface SessionRequest {
  headers: SessionHeaders;
  /** What a DPoP proof names (issue 18): the method and Express's full URL, mount path included. */
  method?: string;
  originalUrl?: string;
  rotor?: SessionPrincipal;
  session?: unknown;
  user?: unknown;
  claims?: unknown;
  isAuthenticated?: unknown;
}
interface ResponseLike {
  status(code: number): ResponseLike;
  set(headers: Record<string, string>): ResponseLike;
  json(body: unknown): unknown;
}

/**
 * Express middleware for the application's own routes: sets `req.rotor` (`{session, user,
 * claims}`; the user without its password hash) and, unless express-session or passport already
 * own them, `req.session`, `req.user` and `req.claims`, from the caller's access token, checked against the store like `GET /auth/me` (a
 * revocation counts at once), or answers `401` in Rotor's JSON shape with `WWW-Authenticate`.
 * A database outage goes to the application's error handler (`next(error)`). Takes the router
 * {@link rotorRouter} made, or an engine (`createRotor`).
 * @example app.get('/notes', requireSession(rotor), (req, res) => res.json(notesOf(req.user.id)))
 */
export function requireSession(source: Rotor | Pick<RotorRouter, 'rotor'>) {
  // A router is a function carrying its engine; an engine has `authenticate` of its own.
  const rotor = 'authenticate' in source ? source : source.rotor;
  return (request: SessionRequest, response: ResponseLike, next: Next): void => {
    const target =
      request.method !== undefined && request.originalUrl !== undefined
        ? { method: request.method, url: request.originalUrl }
        : undefined;
    principalFromHeaders(rotor, request.headers, target).then(
      (principal) => {
        request.rotor = principal;
        // express-session's `req.session` (its touch() runs at the end of the response) and
        // passport's `req.user` (what isAuthenticated() reads) are theirs: written over, the first
        // hung every response and the second would sign the app's passport user in as Rotor's.
        if (request.session === undefined && typeof request.isAuthenticated !== 'function') {
          request.session = principal.session;
          request.user = principal.user;
          request.claims = principal.claims;
        }
        next();
      },
      (error: unknown) => {
        const refusal = toRotorError(error);
        if (refusal.status >= 500) return next(error);
        const { status, headers, body } = errorAnswer(refusal);
        response.status(status).set(headers).json(body);
      },
    );
  };
}
export type { SessionPrincipal, SessionUser } from './http/require-session.js';
