import { once } from 'node:events';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { loadConfig } from '@rotor/server';
import type { WebHandler } from '@rotor/server/web';
import { freePort } from '@rotor/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '@rotor/example-hono-web';
import { DIALECTS, newDatabase } from './databases.js';

const PASSWORD = 'correct horse battery';

/** Each `Set-Cookie` of a response by cookie name: its value and its whole header. */
function setCookies(response: Response): Map<string, { value: string; header: string }> {
  const cookies = new Map<string, { value: string; header: string }>();
  for (const header of response.headers.getSetCookie()) {
    const [pair] = header.split(';');
    const at = pair!.indexOf('=');
    cookies.set(pair!.slice(0, at), { value: pair!.slice(at + 1), header });
  }
  return cookies;
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`examples/hono-web [${dialect.name}]`, () => {
    let base: string;
    let server: Server;
    let rotor: WebHandler;
    let drop: () => void;

    beforeAll(async () => {
      const database = await newDatabase(dialect.name);
      drop = database.drop;
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      const config = loadConfig({
        ROTOR_DATABASE_URL: database.url,
        ROTOR_PORT: String(port),
        ROTOR_ISSUER: `${base}/rotor`,
      });
      const created = await createApp({ config });
      rotor = created.rotor;
      server = serve({ fetch: created.app.fetch, hostname: '127.0.0.1', port }) as Server;
      await once(server, 'listening');
    });
    afterAll(async () => {
      await new Promise((resolve) => server?.close(resolve));
      await rotor?.close();
      drop?.();
    });

    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? null : JSON.stringify(body),
      });
    const register = async (email: string) =>
      expect((await post('/rotor/auth/register', { email, password: PASSWORD })).status).toBe(201);
    const login = (email: string, delivery: 'body' | 'cookies') =>
      post('/rotor/auth/login', { email, password: PASSWORD }, { 'token-delivery': delivery });
    const page = async (cookie?: string) =>
      (await fetch(`${base}/`, { headers: cookie ? { cookie } : {} })).text();
    const me = (headers: Record<string, string>) => fetch(`${base}/api/me`, { headers });

    it('register and a body login: the JSON route answers the bearer, and the session keeps the peer address', async () => {
      await register('ada@hono.example');
      const response = await login('ada@hono.example', 'body');
      expect(response.status).toBe(200);
      const { accessToken, refreshToken } = (await response.json()) as Record<string, string>;
      expect(refreshToken).toBeTypeOf('string');
      const answer = await me({ authorization: `Bearer ${accessToken}` });
      expect(answer.status).toBe(200);
      expect(await answer.json()).toMatchObject({ user: { email: 'ada@hono.example' } });
      const sessions = await fetch(`${base}/rotor/auth/sessions`, {
        headers: { authorization: `Bearer ${accessToken}` },
      });
      expect(((await sessions.json()) as { sessions: { ip: string }[] }).sessions[0]!.ip).toBe(
        '127.0.0.1',
      );
      const anonymous = await me({});
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    });

    it('a cookies login sets each cookie in its own Set-Cookie header, scoped under /rotor; the page shows who signed in', async () => {
      await register('bob@hono.example');
      const response = await login('bob@hono.example', 'cookies');
      expect(response.status).toBe(200);
      expect(await response.json()).not.toHaveProperty('accessToken');
      expect(response.headers.getSetCookie()).toHaveLength(3);
      const cookies = setCookies(response);
      expect(cookies.get('rotor_access')!.header).toMatch(/; Path=\/;.*HttpOnly/);
      expect(cookies.get('rotor_refresh')!.header).toMatch(/; Path=\/rotor\/auth;.*HttpOnly/);
      expect(cookies.get('rotor_device')!.header).toMatch(/; Path=\/rotor\/auth\/login;/);

      const access = `rotor_access=${cookies.get('rotor_access')!.value}`;
      expect(await page(access)).toContain('Signed in as <b>bob@hono.example</b>');
      expect((await me({ cookie: access })).status).toBe(200);
      const signedOut = await page();
      expect(signedOut).toContain('<a href="/sign-in">Sign in</a>');
      expect(signedOut).not.toContain('Signed in as');
      expect(await (await fetch(`${base}/sign-in`)).text()).toContain('<form');
    });

    it('a refresh by cookie rotates both cookies, and the new access cookie signs the page in; a foreign origin is refused', async () => {
      await register('carol@hono.example');
      const first = setCookies(await login('carol@hono.example', 'cookies'));
      const refreshCookie = `rotor_refresh=${first.get('rotor_refresh')!.value}`;
      const foreign = await post('/rotor/auth/refresh', undefined, {
        cookie: refreshCookie,
        origin: 'https://evil.example',
      });
      expect(foreign.status).toBe(403);
      expect(((await foreign.json()) as { error: string }).error).toBe('csrf_rejected');

      const refreshed = await post('/rotor/auth/refresh', undefined, {
        cookie: refreshCookie,
        origin: base,
      });
      expect(refreshed.status).toBe(200);
      const second = setCookies(refreshed);
      expect(second.get('rotor_refresh')!.value).not.toBe(first.get('rotor_refresh')!.value);
      expect(second.get('rotor_access')!.value).not.toBe(first.get('rotor_access')!.value);
      expect(await page(`rotor_access=${second.get('rotor_access')!.value}`)).toContain(
        'Signed in as <b>carol@hono.example</b>',
      );
    });

    it('logout clears both cookies, and the old access cookie is anonymous at once', async () => {
      await register('dave@hono.example');
      const cookies = setCookies(await login('dave@hono.example', 'cookies'));
      const access = `rotor_access=${cookies.get('rotor_access')!.value}`;
      const both = `${access}; rotor_refresh=${cookies.get('rotor_refresh')!.value}`;
      expect(await page(access)).toContain('Signed in as');

      const logout = await post('/rotor/auth/logout', undefined, { cookie: both, origin: base });
      expect(logout.status).toBe(204);
      const cleared = setCookies(logout);
      expect(cleared.get('rotor_access')).toMatchObject({ value: '' });
      expect(cleared.get('rotor_access')!.header).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/);
      expect(cleared.get('rotor_refresh')).toMatchObject({ value: '' });
      expect(cleared.get('rotor_refresh')!.header).toMatch(/Path=\/rotor\/auth/);

      expect(await page(access)).toContain('Sign in</a>');
      expect((await me({ cookie: access })).status).toBe(401);
    });

    it('a session revoked from another device is anonymous on the page and the API at once', async () => {
      await register('erin@hono.example');
      const browser = setCookies(await login('erin@hono.example', 'cookies'));
      const access = `rotor_access=${browser.get('rotor_access')!.value}`;
      const browserSession = (
        (await (await me({ cookie: access })).json()) as { sessionId: string }
      ).sessionId;
      const phone = (await (await login('erin@hono.example', 'body')).json()) as {
        accessToken: string;
      };
      const bearer = { authorization: `Bearer ${phone.accessToken}` };

      const revoke = await fetch(`${base}/rotor/auth/sessions/${browserSession}`, {
        method: 'DELETE',
        headers: bearer,
      });
      expect(revoke.status).toBe(204);
      expect(await page(access)).toContain('Sign in</a>');
      expect((await me({ cookie: access })).status).toBe(401);
      expect((await me(bearer)).status).toBe(200);
    });
  });
}
