import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import {
  DIALECTS,
  login,
  PASSWORD,
  registerUser,
  startTestServer,
  tempDir,
  type TokenBody,
} from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const NEW_PASSWORD = 'a brand new passphrase';

/** The full-width spelling of ASCII text (U+FF01–U+FF5E, U+3000 for a space). */
function fullWidth(text: string): string {
  return [...text]
    .map((c) => (c === ' ' ? '\u3000' : String.fromCharCode(c.charCodeAt(0) + 0xfee0)))
    .join('');
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`POST /auth/password [${dialect.name}]`, () => {
    let app: FastifyInstance;
    let email: string;
    let laptop: TokenBody;
    let phone: TokenBody;

    beforeEach(async () => {
      await app?.close();
      ({ app } = await startTestServer(dir, {}, dialect.name));
      email = await registerUser(app);
      laptop = (await login(app, email)).body;
      phone = (await login(app, email)).body;
    });
    afterAll(() => app?.close());

    const change = (token: string | undefined, payload: unknown) =>
      app.inject({
        method: 'POST',
        url: '/auth/password',
        headers: token ? { authorization: `Bearer ${token}` } : {},
        payload: payload as object,
      });
    const me = (token: string) =>
      app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } });
    const refresh = (refreshToken: string) =>
      app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } });
    const signIn = (password: string) =>
      app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });

    it('204: the new password signs in, the old does not; every other session ends, this one stays', async () => {
      const response = await change(laptop.accessToken, {
        currentPassword: PASSWORD,
        newPassword: NEW_PASSWORD,
      });
      expect(response.statusCode).toBe(204);
      expect((await me(phone.accessToken!)).json().error).toBe('session_revoked');
      expect((await refresh(phone.refreshToken!)).json().error).toBe('session_revoked');
      expect((await me(laptop.accessToken!)).statusCode).toBe(200);
      expect((await refresh(laptop.refreshToken!)).statusCode).toBe(200);
      expect((await signIn(NEW_PASSWORD)).statusCode).toBe(200);
      expect((await signIn(PASSWORD)).json().error).toBe('invalid_credentials');
    });

    it('a wrong current password: 401 invalid_credentials and nothing changes', async () => {
      const response = await change(laptop.accessToken, {
        currentPassword: 'not my password',
        newPassword: NEW_PASSWORD,
      });
      expect(response.statusCode).toBe(401);
      expect(response.json().error).toBe('invalid_credentials');
      expect((await me(phone.accessToken!)).statusCode).toBe(200);
      expect((await signIn(PASSWORD)).statusCode).toBe(200);
    });

    it.each([
      ['a new password that is too short', { currentPassword: PASSWORD, newPassword: 'short' }],
      [
        'a new password equal to the current one',
        { currentPassword: PASSWORD, newPassword: PASSWORD },
      ],
      [
        // NFKC makes it the current password: it would be hashed the same (issue 13, item 15).
        'the full-width spelling of the current password',
        { currentPassword: PASSWORD, newPassword: fullWidth(PASSWORD) },
      ],
      [
        'a new password with a control character',
        { currentPassword: PASSWORD, newPassword: 'new\u0000password' },
      ],
      [
        // It would be one password with every other lone surrogate in its place (UTF-8 makes them
        // all U+FFFD before argon2 sees them): found by the attack review.
        'a new password with a lone surrogate',
        { currentPassword: PASSWORD, newPassword: 'new\uD800password' },
      ],
      ['a missing field', { currentPassword: PASSWORD }],
      ['a field of the wrong type', { currentPassword: PASSWORD, newPassword: 12345678 }],
    ])('%s: 400 invalid_request and nothing changes', async (_label, payload) => {
      const response = await change(laptop.accessToken, payload);
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toBe('invalid_request');
      expect((await me(phone.accessToken!)).statusCode).toBe(200);
      expect((await signIn(PASSWORD)).statusCode).toBe(200);
    });

    it('a missing or mistyped field is named as the client sent it, in details.field', async () => {
      const missing = await change(laptop.accessToken, { newPassword: NEW_PASSWORD });
      expect(missing.json().details).toEqual({ field: 'currentPassword' });
      const mistyped = await change(laptop.accessToken, {
        currentPassword: PASSWORD,
        newPassword: 12345678,
      });
      expect(mistyped.json().details).toEqual({ field: 'newPassword' });
    });

    it('a refused new password is named as the client sent it: details.field is newPassword', async () => {
      for (const newPassword of ['short', PASSWORD, 'new\u0000password']) {
        const response = await change(laptop.accessToken, {
          currentPassword: PASSWORD,
          newPassword,
        });
        expect(response.json().details).toEqual({ field: 'newPassword' });
      }
    });

    it('without an access token: 401 missing_token', async () => {
      const response = await change(undefined, {
        currentPassword: PASSWORD,
        newPassword: NEW_PASSWORD,
      });
      expect(response.statusCode).toBe(401);
      expect(response.json().error).toBe('missing_token');
    });

    it('guessing the current password with a stolen access token is rate limited like logins', async () => {
      const statuses = [];
      for (let i = 0; i < 7; i += 1) {
        const response = await change(laptop.accessToken, {
          currentPassword: `guess ${i} guess`,
          newPassword: NEW_PASSWORD,
        });
        statuses.push(response.statusCode);
      }
      // A budget of 5 verifies five guesses; the sixth is refused before any verification.
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    });
  });
}
