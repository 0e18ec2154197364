import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRotorClient } from '@rotor/client';
import { createVerifier } from '@rotor/verify';
import { rotorPlugin } from '@rotor/server/fastify';
import { requireSession, rotorRouter } from '@rotor/server/express';
import { createWebHandler } from '@rotor/server/web';
import { DIALECTS, PASSWORD, tempDir, testConfig, type DialectName } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const ISSUER = 'http://app.test/rotor';
const ORIGIN = 'http://127.0.0.1:3000';
const ENV = { ROTOR_ISSUER: ISSUER, ROTOR_ALLOWED_ORIGINS: ORIGIN };

/** An application with Rotor mounted at `/rotor` and two routes of its own, listening on loopback. */
interface Mounted {
  /** `http://127.0.0.1:port` */
  base: string;
  close(): Promise<void>;
}

/**
 * The application's own routes, the same in every framework: `GET /api/me` behind the session
 * check, answering `{userId, sessionId}`; `POST /api/echo`, open, answering its text body.
 */
const MOUNTINGS: Record<string, (dialect: DialectName) => Promise<Mounted>> = {
  async fastify(dialect) {
    const app = Fastify({ logger: false });
    await app.register(rotorPlugin, {
      config: await testConfig(dir, ENV, dialect),
      prefix: '/rotor',
    });
    app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_r, body, done) =>
      done(null, body),
    );
    app.get('/api/me', { preHandler: app.requireSession }, async (request) => ({
      userId: request.user!.id,
      sessionId: request.session!.id,
      sub: request.claims!.sub,
    }));
    app.post('/api/echo', async (request) => ({ echo: request.body }));
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    return { base, close: () => app.close() };
  },

  async 'express (express.json() before Rotor)'(dialect) {
    return expressApp(dialect, 'before');
  },

  async 'express (express.json() after Rotor)'(dialect) {
    return expressApp(dialect, 'after');
  },

  async hono(dialect) {
    const rotor = await createWebHandler({
      config: await testConfig(dir, ENV, dialect),
      prefix: '/rotor',
    });
    const app = new Hono();
    app.all('/rotor/*', (c) => rotor.handler(c.req.raw));
    app.all('/rotor', (c) => rotor.handler(c.req.raw));
    app.get('/api/me', async (c) => {
      const principal = await rotor.getSession(c.req.raw.headers);
      if (!principal) return c.json({ error: 'missing_token' }, 401);
      return c.json({
        userId: principal.user.id,
        sessionId: principal.session.id,
        sub: principal.claims.sub,
      });
    });
    app.post('/api/echo', async (c) => c.json({ echo: await c.req.text() }));
    const server = await listen(
      createHttpServer((req, res) => void serveFetch(app.fetch, req, res)),
    );
    return {
      base: baseOf(server),
      close: async () => {
        await new Promise((resolve) => server.close(resolve));
        await rotor.close();
      },
    };
  },
};

async function expressApp(dialect: DialectName, json: 'before' | 'after'): Promise<Mounted> {
  const rotor = await rotorRouter({
    config: await testConfig(dir, ENV, dialect),
    prefix: '/rotor',
  });
  const app = express();
  if (json === 'before') app.use(express.json(), express.urlencoded());
  app.use('/rotor', rotor);
  if (json === 'after') app.use(express.json());
  app.use(express.text());
  app.get('/api/me', requireSession(rotor.rotor), (req, res) => {
    const { user, session, claims } = (
      req as unknown as Parameters<ReturnType<typeof requireSession>>[0]
    ).rotor!;
    res.json({ userId: user.id, sessionId: session.id, sub: claims.sub });
  });
  app.post('/api/echo', (req, res) => {
    res.json({ echo: req.body });
  });
  const server = await listen(createHttpServer(app));
  return {
    base: baseOf(server),
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      await rotor.close();
    },
  };
}

async function listen(server: Server): Promise<Server> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function baseOf(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Node's request to a fetch handler and back (what @hono/node-server does), Set-Cookie kept apart. */
async function serveFetch(
  fetchHandler: (request: Request) => Response | Promise<Response>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const one of [value ?? []].flat()) headers.append(name, one);
  }
  const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
  const response = await fetchHandler(
    new Request(`http://127.0.0.1${req.url}`, { method: req.method, headers, body }),
  );
  const cookies = response.headers.getSetCookie();
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') res.setHeader(name, value);
  });
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  res.statusCode = response.status;
  res.end(Buffer.from(await response.arrayBuffer()));
}

let counter = 0;

/** A cookie's value and attributes from a response's Set-Cookie headers. */
function cookieOf(response: Response, name: string): { value: string; path?: string } | undefined {
  const line = response.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  if (line === undefined) return undefined;
  const [pair, ...attributes] = line.split(/;\s*/);
  const path = attributes.find((a) => /^path=/i.test(a))?.slice(5);
  return { value: pair!.slice(name.length + 1), ...(path !== undefined && { path }) };
}

for (const dialect of DIALECTS) {
  for (const [name, mount] of Object.entries(MOUNTINGS)) {
    describe.skipIf(!dialect.available)(`Rotor mounted in ${name} (${dialect.name})`, () => {
      let app: Mounted;
      let url: (path: string) => string;
      beforeAll(async () => {
        app = await mount(dialect.name);
        url = (path) => `${app.base}${path}`;
      });
      afterAll(async () => app.close());

      /** A new account, signed in with `delivery`. */
      async function signIn(delivery: 'split' | 'cookies' | 'body') {
        const email = `mounted${++counter}@example.com`;
        const registered = await fetch(url('/rotor/auth/register'), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email, password: PASSWORD }),
        });
        expect(registered.status).toBe(201);
        const response = await fetch(url('/rotor/auth/login'), {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'token-delivery': delivery },
          body: JSON.stringify({ email, password: PASSWORD }),
        });
        expect(response.status).toBe(200);
        const body = (await response.json()) as {
          accessToken?: string;
          refreshToken?: string;
          sessionId: string;
          user: { id: string };
        };
        return { response, body };
      }

      it('logs in with every delivery, its cookies scoped to the prefix', async () => {
        const split = await signIn('split');
        expect(split.body.accessToken).toBeTypeOf('string');
        expect(cookieOf(split.response, 'rotor_refresh')?.path).toBe('/rotor/auth');
        expect(cookieOf(split.response, 'rotor_device')?.path).toBe('/rotor/auth/login');
        expect(cookieOf(split.response, 'rotor_access')).toBeUndefined();
        expect(split.response.headers.get('x-frame-options')).toBe('DENY');
        expect(split.response.headers.get('cache-control')).toBe('no-store');

        const cookies = await signIn('cookies');
        expect(cookies.body.accessToken).toBeUndefined();
        // The access cookie reaches the application's own routes.
        expect(cookieOf(cookies.response, 'rotor_access')?.path).toBe('/');
        expect(cookieOf(cookies.response, 'rotor_refresh')?.path).toBe('/rotor/auth');

        const body = await signIn('body');
        expect(body.body.refreshToken).toBeTypeOf('string');
        expect(body.response.headers.getSetCookie()).toEqual([]);
      });

      it('refreshes through the cookie and through the body under the prefix', async () => {
        const split = await signIn('split');
        const refreshCookie = cookieOf(split.response, 'rotor_refresh')!.value;
        const byCookie = await fetch(url('/rotor/auth/refresh'), {
          method: 'POST',
          headers: { cookie: `rotor_refresh=${refreshCookie}`, origin: ORIGIN },
        });
        expect(byCookie.status).toBe(200);
        expect(cookieOf(byCookie, 'rotor_refresh')?.path).toBe('/rotor/auth');

        const body = await signIn('body');
        const byBody = await fetch(url('/rotor/auth/refresh'), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refreshToken: body.body.refreshToken }),
        });
        expect(byBody.status).toBe(200);
        expect(((await byBody.json()) as { refreshToken: string }).refreshToken).not.toBe(
          body.body.refreshToken,
        );
      });

      it('the SDK refreshes against the prefix and @rotor/verify accepts its token', async () => {
        const client = createRotorClient({
          baseUrl: url('/rotor'),
          delivery: 'body',
          autoRefresh: false,
        });
        try {
          const email = `sdk-mounted${++counter}@example.com`;
          await client.register({ email, password: PASSWORD });
          const user = await client.login({ email, password: PASSWORD, deviceName: 'vitest' });
          const first = await client.getAccessToken();
          expect(await client.refresh()).toBe(true);
          const token = await client.getAccessToken();
          expect(token).not.toBe(first);
          const verifier = createVerifier({
            issuer: ISSUER,
            audience: 'rotor',
            jwksUri: url('/rotor/.well-known/jwks.json'),
          });
          expect((await verifier.verify(token!)).sub).toBe(user.id);
          const me = await client.fetch(url('/api/me'));
          expect(me.status).toBe(200);
          expect(((await me.json()) as { userId: string }).userId).toBe(user.id);
        } finally {
          client.close();
        }
      });

      it("the application's route gets the session, and a revocation counts at once", async () => {
        const { body } = await signIn('split');
        const bearer = { authorization: `Bearer ${body.accessToken}` };
        const me = await fetch(url('/api/me'), { headers: bearer });
        expect(me.status).toBe(200);
        expect(await me.json()).toEqual({
          userId: body.user.id,
          sessionId: body.sessionId,
          sub: body.user.id,
        });

        const cookies = await signIn('cookies');
        const access = cookieOf(cookies.response, 'rotor_access')!.value;
        const byCookie = await fetch(url('/api/me'), {
          headers: { cookie: `rotor_access=${access}` },
        });
        expect(byCookie.status).toBe(200);

        const revoked = await fetch(url(`/rotor/auth/sessions/${body.sessionId}`), {
          method: 'DELETE',
          headers: bearer,
        });
        expect(revoked.status).toBe(204);
        // The access token has not expired; the session it names has ended.
        const after = await fetch(url('/api/me'), { headers: bearer });
        expect(after.status).toBe(401);
        if (!name.startsWith('hono')) {
          expect(after.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
          expect(await after.json()).toMatchObject({ error: 'session_revoked' });
        }
        const none = await fetch(url('/api/me'));
        expect(none.status).toBe(401);
      });

      it("the application's own routes get none of Rotor's headers, CSRF or body rules", async () => {
        // A text body (Rotor answers 415), from a foreign origin with an access cookie (Rotor
        // answers 403 csrf_rejected): the application's route answers as it wants.
        const response = await fetch(url('/api/echo'), {
          method: 'POST',
          headers: {
            'content-type': 'text/plain',
            origin: 'https://elsewhere.example',
            cookie: 'rotor_access=x; rotor_access=y',
          },
          body: 'hello',
        });
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({ echo: 'hello' });
        expect(response.headers.get('x-frame-options')).toBeNull();
        expect(response.headers.get('x-request-id')).toBeNull();

        // The same on Rotor's route is refused by Rotor's rules.
        const rotors = await fetch(url('/rotor/auth/refresh'), {
          method: 'POST',
          headers: { 'content-type': 'text/plain', origin: 'https://elsewhere.example' },
          body: 'hello',
        });
        expect(rotors.status).toBe(403);
        expect(await rotors.json()).toMatchObject({ error: 'csrf_rejected' });
        const wrongType = await fetch(url('/rotor/auth/login'), {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: 'hello',
        });
        expect(wrongType.status).toBe(415);
      });

      it("Rotor's 404 and 405 answer under the prefix, with the endpoints listed from its routes", async () => {
        const unknown = await fetch(url('/rotor/auth/nope'));
        expect(unknown.status).toBe(404);
        expect(await unknown.json()).toMatchObject({ error: 'not_found' });
        const wrong = await fetch(url('/rotor/auth/login'));
        expect(wrong.status).toBe(405);
        expect(wrong.headers.get('allow')).toBe('POST');
        const root = (await (await fetch(url('/rotor'))).json()) as { endpoints: string[] };
        expect(root.endpoints).toContain('POST /rotor/auth/login');
        expect(root.endpoints).toContain('GET /rotor/.well-known/jwks.json');
        expect(root.endpoints).toContain('POST /rotor/oauth/token');
        expect(root.endpoints).toContain('GET /rotor/docs');
        expect(root.endpoints).not.toContain('GET /rotor/docs/');
      });
    });
  }
}

describe('two Rotors in one Fastify application', () => {
  it('each has its own routes, OpenAPI document and metrics registry, side by side', async () => {
    const app = Fastify({ logger: false });
    for (const name of ['a', 'b']) {
      // Each in a context of its own: `app.rotor` is then decorated once per context.
      await app.register(async (scope) => {
        await scope.register(rotorPlugin, {
          config: await testConfig(dir, ENV),
          prefix: `/${name}`,
        });
      });
    }
    try {
      await app.ready();
      for (const name of ['a', 'b']) {
        const metrics = await app.inject({ url: `/${name}/metrics` });
        expect(metrics.statusCode).toBe(200);
        expect(metrics.body).toContain('rotor_http_request_duration_seconds');
        const doc = (await app.inject({ url: `/${name}/openapi.json` })).json() as {
          paths: Record<string, unknown>;
        };
        expect(Object.keys(doc.paths)).toContain(`/${name}/auth/login`);
        expect(Object.keys(doc.paths).some((path) => !path.startsWith(`/${name}/`))).toBe(false);
        expect((await app.inject({ url: `/${name}/readyz` })).statusCode).toBe(200);
      }
    } finally {
      await app.close();
    }
  });
});

describe('Express: requireSession beside express-session and passport', () => {
  it('leaves their req.session and req.user alone, sets req.rotor, never hands out the hash', async () => {
    const rotor = await rotorRouter({ config: await testConfig(dir, ENV), prefix: '/rotor' });
    const app = express();
    app.use('/rotor', rotor);
    type Seen = {
      session?: unknown;
      user?: unknown;
      rotor?: { user: object; session: { id: string } };
    };
    // What express-session leaves on every request: a session whose touch() runs at the end.
    const sessionLib = { touch: () => {}, cart: ['book'] };
    app.get(
      '/with-session-lib',
      (req, _res, next) => {
        (req as unknown as Seen).session = sessionLib;
        next();
      },
      requireSession(rotor),
      (req, res) => {
        const seen = req as unknown as Seen;
        res.json({
          sameSession: seen.session === sessionLib,
          rotorSession: seen.rotor?.session.id,
          rotorUserKeys: Object.keys(seen.rotor?.user ?? {}).sort(),
        });
      },
    );
    app.get('/plain', requireSession(rotor), (req, res) => {
      res.json({ userKeys: Object.keys((req as unknown as Seen).user as object).sort() });
    });
    const server = await listen(createHttpServer(app));
    try {
      const base = baseOf(server);
      const email = `beside${++counter}@example.com`;
      await fetch(`${base}/rotor/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: PASSWORD }),
      });
      const login = await fetch(`${base}/rotor/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'token-delivery': 'body' },
        body: JSON.stringify({ email, password: PASSWORD }),
      });
      const { accessToken, sessionId } = (await login.json()) as {
        accessToken: string;
        sessionId: string;
      };
      const headers = { authorization: `Bearer ${accessToken}` };
      const beside = await fetch(`${base}/with-session-lib`, {
        headers,
        signal: AbortSignal.timeout(5000),
      });
      const keys = ['created_at', 'email', 'email_verified_at', 'id', 'name'];
      expect(await beside.json()).toEqual({
        sameSession: true,
        rotorSession: sessionId,
        rotorUserKeys: keys,
      });
      const plain = await fetch(`${base}/plain`, { headers });
      expect(await plain.json()).toEqual({ userKeys: keys });
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await rotor.close();
    }
  });
});

describe('Fastify: app.requireSession', () => {
  it('never hands out the password hash or the session epoch, on request.user or request.rotor', async () => {
    const app = Fastify({ logger: false });
    await app.register(rotorPlugin, { config: await testConfig(dir, ENV), prefix: '/rotor' });
    app.get('/api/keys', { preHandler: app.requireSession }, async (request) => ({
      userKeys: Object.keys(request.user ?? {}).sort(),
      rotorUserKeys: Object.keys(request.rotor?.user ?? {}).sort(),
    }));
    try {
      const email = `fastify-keys${++counter}@example.com`;
      await app.inject({
        method: 'POST',
        url: '/rotor/auth/register',
        payload: { email, password: PASSWORD },
      });
      const login = await app.inject({
        method: 'POST',
        url: '/rotor/auth/login',
        headers: { 'token-delivery': 'body' },
        payload: { email, password: PASSWORD },
      });
      const { accessToken } = login.json() as { accessToken: string };
      const answer = await app.inject({
        url: '/api/keys',
        headers: { authorization: `Bearer ${accessToken}` },
      });
      const keys = ['created_at', 'email', 'email_verified_at', 'id', 'name'];
      expect(answer.json()).toEqual({ userKeys: keys, rotorUserKeys: keys });
    } finally {
      await app.close();
    }
  });
});
