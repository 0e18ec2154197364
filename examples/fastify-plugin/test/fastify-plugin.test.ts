import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRotorClient, type RotorEvent } from '@rotor/client';
import { loadConfig, ManualClock } from '@rotor/server';
import { createApp, PREFIX } from '@rotor/example-fastify-plugin';
import { DIALECTS, freshDatabaseUrl, removeSqliteFiles } from './databases.js';

afterAll(removeSqliteFiles);

const PASSWORD = 'correct horse battery';
/** Where the app's pages are served from: the only origin allowed to use the cookies. */
const ORIGIN = 'http://app.example';
const ACCESS_TTL_SECONDS = 60;

/** What a browser keeps: cookies by name, each sent only under its `Path`, gone at `Max-Age=0`. */
class CookieJar {
  readonly cookies = new Map<string, { value: string; path: string }>();
  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((part) => part.trim());
      const name = pair!.slice(0, pair!.indexOf('='));
      const value = pair!.slice(name.length + 1);
      const path = attributes.find((a) => /^path=/i.test(a))?.slice(5) ?? '/';
      if (value === '' || attributes.some((a) => /^max-age=0$/i.test(a))) this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
  }
  header(path: string): string {
    return [...this.cookies]
      .filter(
        ([, c]) => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
      )
      .map(([name, c]) => `${name}=${c.value}`)
      .join('; ');
  }
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`examples/fastify-plugin [${dialect.name}]`, () => {
    let app: FastifyInstance;
    let base: string;
    let clock: ManualClock;

    beforeEach(async () => {
      clock = new ManualClock(Date.now());
      app = await createApp({
        config: loadConfig({
          ROTOR_DATABASE_URL: await freshDatabaseUrl(dialect.name),
          ROTOR_ISSUER: `http://127.0.0.1${PREFIX}`,
          ROTOR_ALLOWED_ORIGINS: ORIGIN,
          ROTOR_ACCESS_TTL: `${ACCESS_TTL_SECONDS}s`,
        }),
        clock,
      });
      base = await app.listen({ host: '127.0.0.1', port: 0 });
    });
    afterEach(() => app?.close());

    /** A request as the app's page makes it: from ORIGIN, with the jar's cookies for the path. */
    async function browser(
      jar: CookieJar,
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          origin: ORIGIN,
          cookie: jar.header(path),
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      jar.take(response);
      return response;
    }

    it("a browser signs up and in with cookies; the access cookie reaches the app's routes, other origins are refused; refresh after expiry; logout closes them", async () => {
      const jar = new CookieJar();
      const credentials = { email: 'ada@example.com', password: PASSWORD };
      expect((await browser(jar, 'POST', `${PREFIX}/auth/register`, credentials)).status).toBe(201);
      const login = await browser(jar, 'POST', `${PREFIX}/auth/login`, credentials, {
        'token-delivery': 'cookies',
      });
      expect(login.status).toBe(200);
      const grant = (await login.json()) as Record<string, unknown>;
      expect(grant).not.toHaveProperty('accessToken');
      expect(grant).not.toHaveProperty('refreshToken');
      expect(jar.cookies.get('rotor_access')?.path).toBe('/');
      expect(jar.cookies.get('rotor_refresh')?.path).toBe(`${PREFIX}/auth`);
      // The refresh cookie never goes to the app's routes.
      expect(jar.header('/api/notes')).not.toContain('rotor_refresh');

      expect((await browser(jar, 'POST', '/api/notes', { text: 'first' })).status).toBe(201);
      const list = await browser(jar, 'GET', '/api/notes');
      expect(await list.json()).toEqual({
        email: 'ada@example.com',
        notes: [{ id: 1, text: 'first' }],
      });

      // A page of another origin cannot use the cookies (API.md, "CSRF").
      const forged = await browser(
        jar,
        'POST',
        '/api/notes',
        { text: 'forged' },
        { origin: 'https://evil.example' },
      );
      expect(forged.status).toBe(403);
      expect(((await forged.json()) as { error: string }).error).toBe('csrf_rejected');
      const crossSite = await fetch(`${base}/api/notes`, {
        headers: { cookie: jar.header('/api/notes'), 'sec-fetch-site': 'cross-site' },
      });
      expect(crossSite.status).toBe(403);
      expect((await (await browser(jar, 'GET', '/api/notes')).json()).notes).toHaveLength(1);

      clock.advance((ACCESS_TTL_SECONDS + 1) * 1000);
      const expired = await browser(jar, 'GET', '/api/notes');
      expect(expired.status).toBe(401);
      expect(((await expired.json()) as { error: string }).error).toBe('token_expired');
      const before = jar.cookies.get('rotor_access')!.value;
      expect((await browser(jar, 'POST', `${PREFIX}/auth/refresh`)).status).toBe(200);
      expect(jar.cookies.get('rotor_access')!.value).not.toBe(before);
      expect((await browser(jar, 'GET', '/api/notes')).status).toBe(200);

      const access = jar.cookies.get('rotor_access')!.value;
      expect((await browser(jar, 'POST', `${PREFIX}/auth/logout`)).status).toBe(204);
      expect(jar.cookies.has('rotor_access')).toBe(false);
      const after = await fetch(`${base}/api/notes`, {
        headers: { origin: ORIGIN, cookie: `rotor_access=${access}` },
      });
      expect(after.status).toBe(401);
      expect(((await after.json()) as { error: string }).error).toBe('session_revoked');
    });

    it("@rotor/client at the prefix signs in and refreshes silently when the app's route refuses an expired access token", async () => {
      const client = createRotorClient({
        baseUrl: `${base}${PREFIX}`,
        delivery: 'body',
        autoRefresh: false,
      });
      const events: RotorEvent['type'][] = [];
      client.subscribe((event) => events.push(event.type));
      try {
        await client.register({ email: 'bob@example.com', password: PASSWORD });
        const user = await client.login({ email: 'bob@example.com', password: PASSWORD });
        const created = await client.fetch(`${base}/api/notes`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ text: 'from the SDK' }),
        });
        expect(created.status).toBe(201);

        // Rotor's time passes the access token's expiry; the device's own clock does not know.
        const first = await client.getAccessToken();
        clock.advance((ACCESS_TTL_SECONDS + 1) * 1000);
        events.length = 0;
        const list = await client.fetch(`${base}/api/notes`);
        expect(list.status).toBe(200);
        expect(await list.json()).toEqual({
          email: 'bob@example.com',
          notes: [{ id: 1, text: 'from the SDK' }],
        });
        expect(events).toEqual(['token-refused', 'refreshed', 'retrying']);
        expect(await client.getAccessToken()).not.toBe(first);
        expect(client.state?.user.id).toBe(user.id);
      } finally {
        client.close();
      }
    });
  });
}
