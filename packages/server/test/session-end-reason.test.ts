import { afterAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { DIALECTS, login, registerUser, startTestServer, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** The error code and `details` of an answer. */
function refusal(response: { statusCode: number; json(): unknown }) {
  const body = response.json() as { error: string; details?: unknown };
  return { status: response.statusCode, error: body.error, details: body.details };
}

const refresh = (app: FastifyInstance, refreshToken: string | undefined) =>
  app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } });
const me = (app: FastifyInstance, accessToken: string | undefined) =>
  app.inject({
    method: 'GET',
    url: '/auth/me',
    headers: { authorization: `Bearer ${accessToken}` },
  });
const authed = (
  app: FastifyInstance,
  accessToken: string | undefined,
  method: 'POST' | 'DELETE',
  url: string,
) => app.inject({ method, url, headers: { authorization: `Bearer ${accessToken}` } });

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(
    `why a session ended: details.reason [${dialect.name}]`,
    () => {
      it('a session revoked from another device answers session_revoked with reason revoked, at refresh and at /auth/me', async () => {
        const { app } = await startTestServer(dir, {}, dialect.name);
        try {
          const email = await registerUser(app);
          const laptop = (await login(app, email)).body;
          const phone = (await login(app, email)).body;
          await authed(app, phone.accessToken, 'DELETE', `/auth/sessions/${laptop.sessionId}`);
          const expected = {
            status: 401,
            error: 'session_revoked',
            details: { reason: 'revoked' },
          };
          expect(refusal(await me(app, laptop.accessToken))).toEqual(expected);
          expect(refusal(await refresh(app, laptop.refreshToken))).toEqual(expected);
        } finally {
          await app.close();
        }
      });

      it('sign out everywhere: the other devices learn reason logout_all, a plain logout says logout', async () => {
        const { app } = await startTestServer(dir, {}, dialect.name);
        try {
          const email = await registerUser(app);
          const laptop = (await login(app, email)).body;
          const phone = (await login(app, email)).body;
          expect(
            (await authed(app, phone.accessToken, 'POST', '/auth/logout-all')).statusCode,
          ).toBe(204);
          for (const session of [laptop, phone]) {
            expect(refusal(await refresh(app, session.refreshToken))).toEqual({
              status: 401,
              error: 'session_revoked',
              details: { reason: 'logout_all' },
            });
          }
          const tablet = (await login(app, email)).body;
          await app.inject({
            method: 'POST',
            url: '/auth/logout',
            payload: { refreshToken: tablet.refreshToken },
          });
          expect(refusal(await refresh(app, tablet.refreshToken)).details).toEqual({
            reason: 'logout',
          });
        } finally {
          await app.close();
        }
      });

      it('a re-used refresh token answers refresh_token_reused, and every later refresh session_revoked with reason reuse_detected', async () => {
        const { app, clock } = await startTestServer(
          dir,
          { ROTOR_REFRESH_GRACE: '1s' },
          dialect.name,
        );
        try {
          const first = (await login(app, await registerUser(app))).body;
          const second = (await refresh(app, first.refreshToken)).json() as {
            refreshToken: string;
          };
          clock.advance(2_000);
          expect(refusal(await refresh(app, first.refreshToken)).error).toBe(
            'refresh_token_reused',
          );
          expect(refusal(await refresh(app, second.refreshToken))).toEqual({
            status: 401,
            error: 'session_revoked',
            details: { reason: 'reuse_detected' },
          });
        } finally {
          await app.close();
        }
      });

      it('session_expired says idle after the refresh lifetime, max_age after the maximum lifetime', async () => {
        const { app, clock } = await startTestServer(
          dir,
          { ROTOR_ACCESS_TTL: '1m', ROTOR_REFRESH_TTL: '10m', ROTOR_SESSION_MAX_AGE: '25m' },
          dialect.name,
        );
        try {
          const email = await registerUser(app);
          const idle = (await login(app, email)).body;
          clock.advance(10 * 60_000 + 1_000);
          expect(refusal(await refresh(app, idle.refreshToken))).toEqual({
            status: 401,
            error: 'session_expired',
            details: { reason: 'idle' },
          });
          // Refreshed every 9 minutes: never idle, yet over after 25 minutes.
          let active = (await login(app, email)).body;
          for (let i = 0; i < 2; i += 1) {
            clock.advance(9 * 60_000);
            active = (await refresh(app, active.refreshToken)).json() as typeof active;
          }
          clock.advance(8 * 60_000);
          expect(refusal(await refresh(app, active.refreshToken))).toEqual({
            status: 401,
            error: 'session_expired',
            details: { reason: 'max_age' },
          });
          expect(refusal(await me(app, active.accessToken)).error).toBe('token_expired');
        } finally {
          await app.close();
        }
      });

      it('an unknown refresh token learns nothing: invalid_token without details', async () => {
        const { app } = await startTestServer(dir, {}, dialect.name);
        try {
          const refused = refusal(await refresh(app, 'A'.repeat(43)));
          expect(refused).toEqual({ status: 401, error: 'invalid_token', details: undefined });
        } finally {
          await app.close();
        }
      });
    },
  );
}
