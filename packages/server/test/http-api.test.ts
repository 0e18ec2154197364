import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cookieAttributes,
  cookieValue,
  login,
  PASSWORD,
  registerUser,
  setCookies,
  startTestServer,
  tempDir,
  DIALECTS,
  type TestServer,
  type TokenBody,
} from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`[${dialect.name}]`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(dir, {}, dialect.name);
    });
    afterAll(async () => {
      await server.app.close();
    });

    const json = { 'content-type': 'application/json' };

    describe('POST /auth/register', () => {
      it('creates a user: 201 {user} with no password hash', async () => {
        const response = await server.app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: '  Grace@Example.com ', password: PASSWORD, name: 'Grace' },
        });
        expect(response.statusCode).toBe(201);
        const { user } = response.json();
        expect(Object.keys(user).sort()).toEqual([
          'createdAt',
          'email',
          'emailVerified',
          'id',
          'name',
        ]);
        expect(user).toMatchObject({ email: 'grace@example.com', name: 'Grace' });
        expect(new Date(user.createdAt).toISOString()).toBe(user.createdAt);
      });

      it('refuses an email already in use, in any spelling: 409 email_taken', async () => {
        await registerUser(server.app, 'taken@example.com');
        const response = await server.app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: 'TAKEN@example.com', password: PASSWORD },
        });
        expect(response.statusCode).toBe(409);
        expect(response.json().error).toBe('email_taken');
      });

      it.each([
        ['a 7-character password', { email: 'p7@example.com', password: '1234567' }],
        ['a 257-character password', { email: 'p257@example.com', password: 'x'.repeat(257) }],
        ['an email without @', { email: 'not-an-email', password: PASSWORD }],
        ['a missing password', { email: 'nopass@example.com' }],
        ['a numeric email', { email: 42, password: PASSWORD }],
        ['a numeric name', { email: 'n@example.com', password: PASSWORD, name: 7 }],
      ])('refuses %s: 400 invalid_request', async (_label, payload) => {
        const response = await server.app.inject({
          method: 'POST',
          url: '/auth/register',
          payload,
        });
        expect(response.statusCode).toBe(400);
        expect(response.json().error).toBe('invalid_request');
      });

      it('accepts 8 and 256 characters and any composition (NIST 800-63B)', async () => {
        for (const [email, password] of [
          ['eight@example.com', 'aaaaaaaa'],
          ['long@example.com', 'ü'.repeat(256)],
        ]) {
          const response = await server.app.inject({
            method: 'POST',
            url: '/auth/register',
            payload: { email, password },
          });
          expect(response.statusCode).toBe(201);
        }
      });
    });

    describe('POST /auth/login and the three deliveries', () => {
      let email: string;
      beforeAll(async () => {
        email = await registerUser(server.app);
      });

      it('split (default): access token in the body, refresh token in the rotor_refresh cookie', async () => {
        const response = await server.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email, password: PASSWORD, deviceName: 'Work laptop' },
        });
        expect(response.statusCode).toBe(200);
        const body = response.json() as TokenBody;
        expect(body).toMatchObject({
          tokenType: 'Bearer',
          expiresIn: 900,
          refreshExpiresIn: 604800,
        });
        expect(body.accessToken).toMatch(/^ey/);
        expect(body).not.toHaveProperty('refreshToken');
        expect(body.user.email).toBe(email);
        expect(response.headers['cache-control']).toBe('no-store');
        const cookies = setCookies(response);
        // And the device token (OWASP device cookies), sent back to the login route only.
        expect([...cookies.keys()].sort()).toEqual(['rotor_device', 'rotor_refresh']);
        expect(cookieValue(cookies.get('rotor_refresh'))).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(cookieAttributes(cookies.get('rotor_refresh')!)).toEqual(
          new Set(['httponly', 'secure', 'samesite=strict', 'path=/auth', 'max-age=604800']),
        );
      });

      it('cookies: no token in the body; rotor_access and rotor_refresh cookies', async () => {
        const { body, response } = await login(server.app, email, 'cookies');
        expect(body).not.toHaveProperty('accessToken');
        expect(body).not.toHaveProperty('refreshToken');
        const cookies = setCookies(response);
        expect(cookieAttributes(cookies.get('rotor_access')!)).toEqual(
          new Set(['httponly', 'secure', 'samesite=strict', 'path=/', 'max-age=900']),
        );
        expect(cookieAttributes(cookies.get('rotor_refresh')!)).toEqual(
          new Set(['httponly', 'secure', 'samesite=strict', 'path=/auth', 'max-age=604800']),
        );
      });

      it('body: both tokens in the JSON body and no cookie', async () => {
        const { body, response } = await login(server.app, email, 'body');
        expect(body.accessToken).toMatch(/^ey/);
        expect(body.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(body.sessionId).toBeTruthy();
        expect(setCookies(response).size).toBe(0);
      });

      it('an unknown Token-Delivery is 400 invalid_request', async () => {
        const response = await server.app.inject({
          method: 'POST',
          url: '/auth/login',
          headers: { 'token-delivery': 'carrier-pigeon' },
          payload: { email, password: PASSWORD },
        });
        expect(response.statusCode).toBe(400);
        expect(response.json().error).toBe('invalid_request');
      });

      it('a wrong password and an unknown email are both 401 invalid_credentials', async () => {
        for (const payload of [
          { email, password: 'wrong password' },
          { email: 'nobody@example.com', password: PASSWORD },
        ]) {
          const response = await server.app.inject({ method: 'POST', url: '/auth/login', payload });
          expect(response.statusCode).toBe(401);
          expect(response.json()).toEqual({
            error: 'invalid_credentials',
            message: expect.any(String),
          });
        }
      });

      it('with ROTOR_COOKIE_SECURE=false the cookies drop only Secure', async () => {
        const plain = await startTestServer(dir, { ROTOR_COOKIE_SECURE: 'false' }, dialect.name);
        try {
          const address = await registerUser(plain.app);
          const { response } = await login(plain.app, address, 'cookies');
          for (const line of setCookies(response).values()) {
            expect(cookieAttributes(line).has('secure')).toBe(false);
            expect(cookieAttributes(line).has('httponly')).toBe(true);
          }
        } finally {
          await plain.app.close();
        }
      });
    });

    describe('POST /auth/refresh', () => {
      let email: string;
      beforeAll(async () => {
        email = await registerUser(server.app);
      });

      it('body delivery: a plain {refreshToken} rotates and answers in the body', async () => {
        const { body } = await login(server.app, email, 'body');
        const response = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: body.refreshToken },
        });
        expect(response.statusCode).toBe(200);
        const next = response.json() as TokenBody;
        expect(next.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(next.refreshToken).not.toBe(body.refreshToken);
        expect(next.sessionId).toBe(body.sessionId);
        expect(setCookies(response).size).toBe(0);
      });

      it('split: the cookie rotates, the new access token comes in the body', async () => {
        const { response } = await login(server.app, email, 'split');
        const refreshCookie = cookieValue(setCookies(response).get('rotor_refresh'))!;
        const refreshed = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          cookies: { rotor_refresh: refreshCookie },
        });
        expect(refreshed.statusCode).toBe(200);
        expect(refreshed.json().accessToken).toMatch(/^ey/);
        expect(refreshed.json()).not.toHaveProperty('refreshToken');
        const next = cookieValue(setCookies(refreshed).get('rotor_refresh'));
        expect(next).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(next).not.toBe(refreshCookie);
      });

      it('a header-less cookie refresh answers in the delivery that issued the cookie', async () => {
        const { response } = await login(server.app, email, 'cookies');
        const refreshed = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          headers: json,
          cookies: { rotor_refresh: cookieValue(setCookies(response).get('rotor_refresh'))! },
        });
        expect(refreshed.statusCode).toBe(200);
        expect(refreshed.json()).not.toHaveProperty('accessToken');
        expect([...setCookies(refreshed).keys()].sort()).toEqual(['rotor_access', 'rotor_refresh']);
      });

      describe('a cookie-held refresh token only ever goes back into the cookie', () => {
        const loginCookie = async (delivery: 'split' | 'cookies') => {
          const { response } = await login(server.app, email, delivery);
          return cookieValue(setCookies(response).get('rotor_refresh'))!;
        };
        const refreshWith = (refreshCookie: string, delivery?: string) =>
          server.app.inject({
            method: 'POST',
            url: '/auth/refresh',
            headers: {
              // What script on an allowed origin sends: the browser adds the HttpOnly cookie.
              origin: 'http://127.0.0.1:3000',
              ...(delivery !== undefined && { 'token-delivery': delivery }),
            },
            cookies: { rotor_refresh: refreshCookie },
          });
        const expectRefused = (response: Awaited<ReturnType<typeof refreshWith>>) => {
          expect(response.statusCode).toBe(400);
          expect(response.json()).toMatchObject({
            error: 'invalid_request',
            details: { header: 'Token-Delivery' },
          });
          // Nothing set, nothing cleared.
          expect(setCookies(response).size).toBe(0);
        };

        it('a split session refreshed from the cookie with Token-Delivery: body is 400, and the cookie still refreshes after', async () => {
          const refreshCookie = await loginCookie('split');
          expectRefused(await refreshWith(refreshCookie, 'body'));
          // Not rotated: the same cookie refreshes, so the owner never trips re-use detection.
          const after = await refreshWith(refreshCookie);
          expect(after.statusCode).toBe(200);
          expect(after.json()).not.toHaveProperty('refreshToken');
          expect(cookieValue(setCookies(after).get('rotor_refresh'))).toMatch(/^[\w-]{43}$/);
        });

        it('a cookies session refreshed from the cookie with Token-Delivery: split is 400, nothing rotated', async () => {
          const refreshCookie = await loginCookie('cookies');
          expectRefused(await refreshWith(refreshCookie, 'split'));
          const after = await refreshWith(refreshCookie);
          expect(after.statusCode).toBe(200);
          expect(after.json()).not.toHaveProperty('accessToken');
        });

        it('a cookies session refreshed from the cookie with Token-Delivery: body is 400, nothing rotated', async () => {
          const refreshCookie = await loginCookie('cookies');
          expectRefused(await refreshWith(refreshCookie, 'body'));
          expect((await refreshWith(refreshCookie)).statusCode).toBe(200);
        });

        it('delivery only becomes stricter: split → cookies is allowed, and then split is refused', async () => {
          const refreshCookie = await loginCookie('split');
          const stricter = await refreshWith(refreshCookie, 'cookies');
          expect(stricter.statusCode).toBe(200);
          expect(stricter.json()).not.toHaveProperty('accessToken');
          expect([...setCookies(stricter).keys()].sort()).toEqual([
            'rotor_access',
            'rotor_refresh',
          ]);
          const next = cookieValue(setCookies(stricter).get('rotor_refresh'))!;
          expectRefused(await refreshWith(next, 'split'));
          const headerless = await refreshWith(next);
          expect(headerless.statusCode).toBe(200);
          expect(headerless.json()).not.toHaveProperty('accessToken');
        });

        it('a cookie refresh without the header keeps its delivery', async () => {
          for (const delivery of ['split', 'cookies'] as const) {
            let refreshCookie = await loginCookie(delivery);
            for (let i = 0; i < 2; i++) {
              const refreshed = await refreshWith(refreshCookie);
              expect(refreshed.statusCode).toBe(200);
              expect(refreshed.json()).not.toHaveProperty('refreshToken');
              expect('accessToken' in refreshed.json()).toBe(delivery === 'split');
              expect(setCookies(refreshed).has('rotor_access')).toBe(delivery === 'cookies');
              refreshCookie = cookieValue(setCookies(refreshed).get('rotor_refresh'))!;
            }
          }
        });

        it('a racer inside the grace window is held to the same rule', async () => {
          const refreshCookie = await loginCookie('split');
          expect((await refreshWith(refreshCookie)).statusCode).toBe(200);
          // The same cookie again within the grace window would get the same successor: not in the body.
          expectRefused(await refreshWith(refreshCookie, 'body'));
          expect((await refreshWith(refreshCookie)).statusCode).toBe(200);
        });

        it('a refresh token presented in the body answers as asked, as before', async () => {
          const refreshCookie = await loginCookie('cookies');
          const response = await server.app.inject({
            method: 'POST',
            url: '/auth/refresh',
            headers: { 'token-delivery': 'split' },
            payload: { refreshToken: refreshCookie },
          });
          expect(response.statusCode).toBe(200);
          expect(response.json().accessToken).toMatch(/^ey/);
        });
      });

      it('the body wins over the cookie', async () => {
        const a = await login(server.app, email, 'body');
        const b = await login(server.app, email, 'split');
        const refreshed = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: a.body.refreshToken },
          cookies: { rotor_refresh: cookieValue(setCookies(b.response).get('rotor_refresh'))! },
        });
        expect(refreshed.json().sessionId).toBe(a.body.sessionId);
      });

      it('without a refresh token: 401 missing_token', async () => {
        const response = await server.app.inject({ method: 'POST', url: '/auth/refresh' });
        expect(response.statusCode).toBe(401);
        expect(response.json().error).toBe('missing_token');
      });

      it('re-use after the grace window: 401 refresh_token_reused, then session_revoked', async () => {
        const { body } = await login(server.app, email, 'body');
        const first = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: body.refreshToken },
        });
        server.clock.advance(11_000);
        const reused = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: body.refreshToken },
        });
        expect(reused.statusCode).toBe(401);
        expect(reused.json().error).toBe('refresh_token_reused');
        const after = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: first.json().refreshToken },
        });
        expect(after.json().error).toBe('session_revoked');
      });
    });

    describe('protected endpoints', () => {
      let email: string;
      let tokens: TokenBody;
      beforeAll(async () => {
        email = await registerUser(server.app);
        tokens = (
          await login(server.app, email, 'body', {
            'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0',
          })
        ).body;
      });
      const bearer = (token = tokens.accessToken!) => ({ authorization: `Bearer ${token}` });

      it('GET /auth/me: {user, session} with current true', async () => {
        const response = await server.app.inject({
          method: 'GET',
          url: '/auth/me',
          headers: bearer(),
        });
        expect(response.statusCode).toBe(200);
        const { user, session } = response.json();
        expect(user.email).toBe(email);
        expect(Object.keys(session).sort()).toEqual(
          [
            'createdAt',
            'current',
            'deviceName',
            'dpopBound',
            'expiresAt',
            'id',
            'ip',
            'lastUsedAt',
            'userAgent',
          ].sort(),
        );
        expect(session).toMatchObject({
          id: tokens.sessionId,
          current: true,
          dpopBound: false,
          deviceName: 'Chrome on Linux',
          ip: '127.0.0.1',
        });
      });

      it('the rotor_access cookie authenticates too, and the header wins over it', async () => {
        const viaCookie = await server.app.inject({
          method: 'GET',
          url: '/auth/me',
          cookies: { rotor_access: tokens.accessToken! },
        });
        expect(viaCookie.statusCode).toBe(200);
        const headerWins = await server.app.inject({
          method: 'GET',
          url: '/auth/me',
          headers: bearer('garbage'),
          cookies: { rotor_access: tokens.accessToken! },
        });
        expect(headerWins.statusCode).toBe(401);
      });

      it('no token: 401 missing_token with a plain WWW-Authenticate: Bearer', async () => {
        const response = await server.app.inject({ method: 'GET', url: '/auth/me' });
        expect(response.statusCode).toBe(401);
        expect(response.json().error).toBe('missing_token');
        expect(response.headers['www-authenticate']).toBe('Bearer');
      });

      it('an expired token: 401 token_expired with error="invalid_token"', async () => {
        const { body } = await login(server.app, email, 'body');
        server.clock.advance(901_000 + 1_000);
        const response = await server.app.inject({
          method: 'GET',
          url: '/auth/me',
          headers: bearer(body.accessToken),
        });
        expect(response.statusCode).toBe(401);
        expect(response.json().error).toBe('token_expired');
        expect(response.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
        tokens = (await login(server.app, email, 'body')).body;
      });

      it('GET /auth/sessions: only the caller’s, newest first, this device marked', async () => {
        const other = await registerUser(server.app);
        await login(server.app, other, 'body');
        server.clock.advance(1_000);
        const newer = (await login(server.app, email, 'body')).body;
        const response = await server.app.inject({
          method: 'GET',
          url: '/auth/sessions',
          headers: bearer(newer.accessToken),
        });
        const { sessions } = response.json() as {
          sessions: { id: string; current: boolean; createdAt: string }[];
        };
        expect(sessions[0]!.id).toBe(newer.sessionId);
        expect(sessions.filter((s) => s.current).map((s) => s.id)).toEqual([newer.sessionId]);
        const times = sessions.map((s) => s.createdAt);
        expect([...times].sort().reverse()).toEqual(times);
        expect(sessions.map((s) => s.id)).toContain(tokens.sessionId);
      });

      it('DELETE /auth/sessions/:id revokes one device at once; unknown or foreign ids are 404', async () => {
        const device = (await login(server.app, email, 'body')).body;
        const deleted = await server.app.inject({
          method: 'DELETE',
          url: `/auth/sessions/${device.sessionId}`,
          headers: bearer(),
        });
        expect(deleted.statusCode).toBe(204);
        const revoked = await server.app.inject({
          method: 'GET',
          url: '/auth/me',
          headers: bearer(device.accessToken),
        });
        expect(revoked.json().error).toBe('session_revoked');

        const stranger = await registerUser(server.app);
        const foreign = (await login(server.app, stranger, 'body')).body;
        for (const id of [foreign.sessionId, 'no-such-session']) {
          const response = await server.app.inject({
            method: 'DELETE',
            url: `/auth/sessions/${id}`,
            headers: bearer(),
          });
          expect(response.statusCode).toBe(404);
          expect(response.json().error).toBe('not_found');
        }
        const stillThere = await server.app.inject({
          method: 'GET',
          url: '/auth/me',
          headers: bearer(foreign.accessToken),
        });
        expect(stillThere.statusCode).toBe(200);
      });

      it('GET /.well-known/jwks.json verifies the access token with the public key alone', async () => {
        const response = await server.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
        expect(response.statusCode).toBe(200);
        expect(response.headers['cache-control']).toMatch(/max-age=\d+/);
        const jwks = response.json();
        expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
        const header = decodeProtectedHeader(tokens.accessToken!);
        expect(header).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
        expect(jwks.keys.map((k: { kid: string }) => k.kid)).toContain(header.kid);
        const { payload } = await jwtVerify(tokens.accessToken!, createLocalJWKSet(jwks), {
          issuer: server.config.issuer,
          audience: 'rotor',
          currentDate: new Date(server.clock.now()),
        });
        expect(payload).toMatchObject({ sub: tokens.user.id, sid: tokens.sessionId });
        expect(Object.keys(payload).sort()).toEqual([
          'aud',
          'email_verified',
          'exp',
          'iat',
          'iss',
          'jti',
          'sid',
          'sub',
        ]);
      });
    });

    describe('logout', () => {
      let email: string;
      beforeAll(async () => {
        email = await registerUser(server.app);
      });

      it('with the refresh cookie: 204, session revoked, both cookies cleared', async () => {
        const { body, response } = await login(server.app, email, 'split');
        const refresh = cookieValue(setCookies(response).get('rotor_refresh'))!;
        const out = await server.app.inject({
          method: 'POST',
          url: '/auth/logout',
          cookies: { rotor_refresh: refresh },
        });
        expect(out.statusCode).toBe(204);
        expect(out.body).toBe('');
        const cleared = setCookies(out);
        for (const [name, path] of [
          ['rotor_refresh', 'path=/auth'],
          ['rotor_access', 'path=/'],
        ] as const) {
          expect(cookieValue(cleared.get(name))).toBe('');
          expect(cookieAttributes(cleared.get(name)!)).toContain('max-age=0');
          expect(cookieAttributes(cleared.get(name)!)).toContain(path);
        }
        const me = await server.app.inject({
          method: 'GET',
          url: '/auth/me',
          headers: { authorization: `Bearer ${body.accessToken}` },
        });
        expect(me.json().error).toBe('session_revoked');
        const again = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          cookies: { rotor_refresh: refresh },
        });
        expect(again.json().error).toBe('session_revoked');
      });

      it('with only an access token: 204 and that session is revoked', async () => {
        const { body } = await login(server.app, email, 'body');
        const out = await server.app.inject({
          method: 'POST',
          url: '/auth/logout',
          headers: { authorization: `Bearer ${body.accessToken}` },
        });
        expect(out.statusCode).toBe(204);
        const again = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: body.refreshToken },
        });
        expect(again.json().error).toBe('session_revoked');
      });

      it('is idempotent: no token or a dead one still answers 204 and clears cookies', async () => {
        for (const request of [
          {},
          { cookies: { rotor_refresh: 'dead' } },
          { payload: { refreshToken: 'B'.repeat(43) } },
          { headers: { authorization: 'Bearer not.a.jwt' } },
        ]) {
          const out = await server.app.inject({ method: 'POST', url: '/auth/logout', ...request });
          expect(out.statusCode).toBe(204);
          expect(setCookies(out).has('rotor_refresh')).toBe(true);
        }
      });

      const meStatus = async (accessToken: string) =>
        (
          await server.app.inject({
            method: 'GET',
            url: '/auth/me',
            headers: { authorization: `Bearer ${accessToken}` },
          })
        ).json().error ?? 'ok';

      it('a refresh token that names no session ends the Bearer access token’s session', async () => {
        for (const unknown of ['B'.repeat(43), 'not a refresh token']) {
          const { body } = await login(server.app, email, 'body');
          const out = await server.app.inject({
            method: 'POST',
            url: '/auth/logout',
            headers: { authorization: `Bearer ${body.accessToken}` },
            payload: { refreshToken: unknown },
          });
          expect(out.statusCode).toBe(204);
          expect(await meStatus(body.accessToken!)).toBe('session_revoked');
        }
      });

      it('a refresh token of another session, even an expired one, ends the Bearer access token’s session too', async () => {
        const stale = (await login(server.app, email, 'body')).body;
        // The stale session expires (idle); its refresh token still names it, dead.
        server.clock.advance(8 * 24 * 60 * 60 * 1000);
        const { body } = await login(server.app, email, 'body');
        const out = await server.app.inject({
          method: 'POST',
          url: '/auth/logout',
          headers: { authorization: `Bearer ${body.accessToken}` },
          payload: { refreshToken: stale.refreshToken },
        });
        expect(out.statusCode).toBe(204);
        expect(await meStatus(body.accessToken!)).toBe('session_revoked');
        const refreshed = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: body.refreshToken },
        });
        expect(refreshed.json().error).toBe('session_revoked');
      });

      it('a refresh cookie that names no session ends the access cookie’s session', async () => {
        const { response } = await login(server.app, email, 'cookies');
        const accessCookie = cookieValue(setCookies(response).get('rotor_access'))!;
        const out = await server.app.inject({
          method: 'POST',
          url: '/auth/logout',
          cookies: { rotor_refresh: 'C'.repeat(43), rotor_access: accessCookie },
        });
        expect(out.statusCode).toBe(204);
        const me = await server.app.inject({
          method: 'GET',
          url: '/auth/me',
          cookies: { rotor_access: accessCookie },
        });
        expect(me.json().error).toBe('session_revoked');
        const refreshed = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          cookies: { rotor_refresh: cookieValue(setCookies(response).get('rotor_refresh'))! },
        });
        expect(refreshed.json().error).toBe('session_revoked');
      });

      it('a logout ends every session its tokens name: the refresh token’s and the access token’s', async () => {
        const own = (await login(server.app, email, 'body')).body;
        const other = (await login(server.app, email, 'body')).body;
        const out = await server.app.inject({
          method: 'POST',
          url: '/auth/logout',
          headers: { authorization: `Bearer ${other.accessToken}` },
          payload: { refreshToken: own.refreshToken },
        });
        expect(out.statusCode).toBe(204);
        expect(await meStatus(own.accessToken!)).toBe('session_revoked');
        // The caller takes the 204 as signed out: no token it sent stays live.
        expect(await meStatus(other.accessToken!)).toBe('session_revoked');
      });

      it('logout-all: 204 and every session of the user is revoked', async () => {
        const a = (await login(server.app, email, 'body')).body;
        const b = (await login(server.app, email, 'body')).body;
        const out = await server.app.inject({
          method: 'POST',
          url: '/auth/logout-all',
          headers: { authorization: `Bearer ${a.accessToken}` },
        });
        expect(out.statusCode).toBe(204);
        expect(setCookies(out).has('rotor_refresh')).toBe(true);
        for (const tokens of [a, b]) {
          const me = await server.app.inject({
            method: 'GET',
            url: '/auth/me',
            headers: { authorization: `Bearer ${tokens.accessToken}` },
          });
          expect(me.json().error).toBe('session_revoked');
        }
      });
    });

    describe('a Rotor cookie sent more than once', () => {
      let email: string;
      beforeAll(async () => {
        email = await registerUser(server.app);
      });
      const splitCookie = async () => {
        const { response } = await login(server.app, email, 'split');
        return cookieValue(setCookies(response).get('rotor_refresh'))!;
      };
      const refresh = (cookie: string) =>
        server.app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie } });

      it('two rotor_refresh values are 400 invalid_request and rotate neither token', async () => {
        // What a browser sends once a sibling subdomain set its own rotor_refresh for the parent domain.
        const attacker = await splitCookie();
        const victim = await splitCookie();
        for (const cookie of [
          `rotor_refresh=${attacker}; rotor_refresh=${victim}`,
          `rotor_refresh=tossed-and-invalid; rotor_refresh=${victim}`,
          `rotor_refresh=${victim};other=1;  rotor_refresh\t=${attacker}`,
        ]) {
          const response = await refresh(cookie);
          expect(response.statusCode).toBe(400);
          expect(response.json()).toMatchObject({
            error: 'invalid_request',
            details: { cookie: 'rotor_refresh' },
          });
          expect(setCookies(response).size).toBe(0);
        }
        for (const token of [attacker, victim]) {
          expect((await refresh(`rotor_refresh=${token}`)).statusCode).toBe(200);
        }
      });

      it('two rotor_access values are 400 invalid_request on GET /auth/me', async () => {
        const a = (await login(server.app, email, 'body')).body.accessToken!;
        const b = (await login(server.app, email, 'body')).body.accessToken!;
        const response = await server.app.inject({
          method: 'GET',
          url: '/auth/me',
          headers: { cookie: `rotor_access=${a}; rotor_access=${b}` },
        });
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({
          error: 'invalid_request',
          details: { cookie: 'rotor_access' },
        });
      });

      it('rotor_refresh_x and xrotor_refresh are other cookies, not a second rotor_refresh', async () => {
        const token = await splitCookie();
        const response = await refresh(
          `rotor_refresh_x=1; xrotor_refresh=2; rotor_refresh=${token}; rotor_refresh_x=3; rotor_refresh`,
        );
        expect(response.statusCode).toBe(200);
      });
    });

    describe('CSRF on cookie-authenticated requests', () => {
      let refreshCookie: string;
      let accessCookie: string;
      beforeAll(async () => {
        const email = await registerUser(server.app);
        const { response } = await login(server.app, email, 'cookies');
        refreshCookie = cookieValue(setCookies(response).get('rotor_refresh'))!;
        accessCookie = cookieValue(setCookies(response).get('rotor_access'))!;
      });

      it.each([
        ['POST', '/auth/refresh', { origin: 'https://evil.example' }],
        ['POST', '/auth/refresh', { 'sec-fetch-site': 'cross-site' }],
        ['POST', '/auth/refresh', { origin: 'null' }],
        ['POST', '/auth/logout', { origin: 'https://evil.example' }],
        ['GET', '/auth/me', { origin: 'https://evil.example' }],
        ['POST', '/auth/logout-all', { 'sec-fetch-site': 'cross-site' }],
      ] as const)(
        '%s %s with %o: 403 csrf_rejected, nothing changed',
        async (method, url, headers) => {
          const response = await server.app.inject({
            method,
            url,
            headers,
            cookies: { rotor_refresh: refreshCookie, rotor_access: accessCookie },
          });
          expect(response.statusCode).toBe(403);
          expect(response.json().error).toBe('csrf_rejected');
          expect(setCookies(response).size).toBe(0);
        },
      );

      it('logout is refused before anything else, even without a token', async () => {
        const response = await server.app.inject({
          method: 'POST',
          url: '/auth/logout',
          headers: { origin: 'https://evil.example' },
        });
        expect(response.statusCode).toBe(403);
      });

      it('the allowed origin, same-origin fetch metadata, and no headers at all pass', async () => {
        for (const headers of [
          { origin: 'http://127.0.0.1:3000' },
          { origin: 'http://localhost:3000' },
          { 'sec-fetch-site': 'same-origin' },
          {},
        ]) {
          const me = await server.app.inject({
            method: 'GET',
            url: '/auth/me',
            headers,
            cookies: { rotor_access: accessCookie },
          });
          expect(me.statusCode).toBe(200);
        }
        const refreshed = await server.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          headers: { origin: 'http://127.0.0.1:3000', 'sec-fetch-site': 'same-origin' },
          cookies: { rotor_refresh: refreshCookie },
        });
        expect(refreshed.statusCode).toBe(200);
      });
    });

    describe('health', () => {
      it('GET /healthz and /readyz answer 200 {status: "ok"}', async () => {
        for (const url of ['/healthz', '/readyz']) {
          const response = await server.app.inject({ method: 'GET', url });
          expect(response.statusCode).toBe(200);
          expect(response.json()).toEqual({ status: 'ok' });
        }
      });

      it('GET /readyz answers 503 unavailable when the database is gone', async () => {
        const broken = await startTestServer(dir, {}, dialect.name);
        await broken.app.rotor.store.close();
        const response = await broken.app.inject({ method: 'GET', url: '/readyz' });
        expect(response.statusCode).toBe(503);
        expect(response.json().error).toBe('unavailable');
        const login = await broken.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email: 'a@b.c', password: PASSWORD },
        });
        expect(login.statusCode).toBe(503);
        expect(login.json().error).toBe('unavailable');
      });
    });

    describe('CORS for allowed origins', () => {
      it('answers a preflight from an allowed origin with credentials, and ignores others', async () => {
        const preflight = (origin: string) =>
          server.app.inject({
            method: 'OPTIONS',
            url: '/auth/refresh',
            headers: {
              origin,
              'access-control-request-method': 'POST',
              'access-control-request-headers': 'content-type,token-delivery',
            },
          });
        const allowed = await preflight('http://localhost:3000');
        expect(allowed.statusCode).toBe(204);
        expect(allowed.headers['access-control-allow-origin']).toBe('http://localhost:3000');
        expect(allowed.headers['access-control-allow-credentials']).toBe('true');
        expect(String(allowed.headers['access-control-allow-headers']).toLowerCase()).toContain(
          'token-delivery',
        );
        expect(allowed.headers['access-control-allow-methods']).toBe('GET, POST, DELETE');
        expect(allowed.headers['access-control-max-age']).toBe('600');
        expect(allowed.headers['x-content-type-options']).toBe('nosniff');
        const denied = await preflight('https://evil.example');
        expect(denied.statusCode).toBe(204);
        expect(denied.headers['access-control-allow-origin']).toBeUndefined();
        expect(denied.headers['access-control-allow-credentials']).toBeUndefined();
        expect(denied.headers['access-control-allow-methods']).toBeUndefined();
        // Malformed (no Origin), on any path: an empty 204, never a 404 or a plain-text 400.
        const bare = await server.app.inject({ method: 'OPTIONS', url: '/no/such/route' });
        expect([bare.statusCode, bare.body]).toEqual([204, '']);
        expect(bare.headers['access-control-allow-origin']).toBeUndefined();
      });

      it('gives an allowed origin its headers on actual requests, and non-CORS requests only Vary', async () => {
        const cors = await server.app.inject({
          method: 'GET',
          url: '/healthz',
          headers: { origin: 'http://localhost:3000' },
        });
        expect(cors.headers).toMatchObject({
          'access-control-allow-origin': 'http://localhost:3000',
          'access-control-allow-credentials': 'true',
          'access-control-expose-headers':
            'WWW-Authenticate, Retry-After, X-Request-Id, DPoP-Nonce',
          vary: 'Origin',
        });
        const plain = await server.app.inject({ method: 'GET', url: '/healthz' });
        expect(plain.headers.vary).toBe('Origin');
        expect(plain.headers['access-control-allow-origin']).toBeUndefined();
        expect(plain.headers['access-control-allow-credentials']).toBeUndefined();
        const other = await server.app.inject({
          method: 'GET',
          url: '/healthz',
          headers: { origin: 'https://evil.example' },
        });
        expect(other.headers['access-control-allow-origin']).toBeUndefined();
      });
    });
  });
}
