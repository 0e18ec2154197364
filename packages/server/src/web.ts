import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Rotor } from './rotor.js';
import { rotorPlugin, type RotorPluginOptions } from './http/plugin.js';
import { sessionFromHeaders, type SessionPrincipal } from './http/require-session.js';

/** The parts of a request Rotor needs that a `Request` does not carry. */
export interface WebRequestInfo {
  /**
   * The peer's IP address (the socket's, or your platform's: `info.remote.address` in Hono's Node
   * server, `server.requestIP(request)` in Bun, `info.remoteAddr` in Deno). Rate limits and
   * `ROTOR_TRUST_PROXY` start from it; without it every caller counts as one unknown client.
   */
  remoteAddress?: string;
}

/** Rotor as a web-standard handler (Hono, Next.js route handlers, Bun, Deno). */
export interface WebHandler {
  /** Answers a request under the prefix; anything else is a Rotor `404 not_found`. */
  handler(request: Request, info?: WebRequestInfo): Promise<Response>;
  /**
   * The caller of a server-rendered page (its `Authorization` or `rotor_access` cookie), checked
   * against the store like `GET /auth/me`; null when signed out, a revoked or expired session
   * included. Throws `RotorError` `unavailable` when the database cannot be reached.
   */
  getSession(headers: Headers): Promise<SessionPrincipal | null>;
  /** The engine. */
  readonly rotor: Rotor;
  /** Stops the background jobs and closes the engine (when it was built from `config`). */
  close(): Promise<void>;
}

/** A stand-in peer when none is given: not loopback, so `/metrics` is not opened by accident. */
const UNKNOWN_PEER = '0.0.0.0';

/**
 * Builds Rotor as `handler(request) → Response`. Inside, a Fastify instance with {@link rotorPlugin}
 * answers each request through `inject` (as @fastify/aws-lambda does): no socket, the same routes,
 * hooks and answers; every `Set-Cookie` stays a header of its own in the Response.
 * @example
 * const rotor = await createWebHandler({ config: loadConfig(), prefix: '/rotor' });
 * app.all('/rotor/*', (c) => rotor.handler(c.req.raw));          // Hono
 * export const GET = rotor.handler, POST = rotor.handler;         // Next.js app/rotor/[...path]/route.ts
 */
export async function createWebHandler(
  options: RotorPluginOptions & { logger?: FastifyServerOptions['logger'] },
): Promise<WebHandler> {
  const { logger = false, ...plugin } = options;
  const app: FastifyInstance = Fastify({ logger });
  await app.register(rotorPlugin, { metrics: false, ...plugin });
  await app.ready();
  const { rotor } = app;
  return {
    rotor,
    async handler(request, info = {}) {
      const url = new URL(request.url);
      const headers: Record<string, string> = {};
      request.headers.forEach((value, name) => {
        headers[name] = value;
      });
      const body =
        request.method === 'GET' || request.method === 'HEAD'
          ? undefined
          : Buffer.from(await request.arrayBuffer());
      const answer = await app.inject({
        method: request.method as 'GET',
        url: url.pathname + url.search,
        headers,
        remoteAddress: info.remoteAddress ?? UNKNOWN_PEER,
        ...(body !== undefined && body.length > 0 && { payload: body }),
      });
      const responseHeaders = new Headers();
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value === undefined) continue;
        for (const one of [value].flat()) responseHeaders.append(name, String(one));
      }
      const status = answer.statusCode;
      const empty = status === 204 || status === 304 || request.method === 'HEAD';
      const payload = empty ? null : new Uint8Array(answer.rawPayload);
      return new Response(payload, { status, headers: responseHeaders });
    },
    getSession: (headers) =>
      sessionFromHeaders(rotor, {
        authorization: headers.get('authorization') ?? undefined,
        cookie: headers.get('cookie') ?? undefined,
        origin: headers.get('origin') ?? undefined,
        'sec-fetch-site': headers.get('sec-fetch-site') ?? undefined,
      }),
    close: () => app.close(),
  };
}
export type { SessionPrincipal, SessionUser } from './http/require-session.js';
