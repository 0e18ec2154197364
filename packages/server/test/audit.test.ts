import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createRotor, loadConfig, ManualClock } from '@rotor/server';
import { DIALECTS, newDatabaseUrl, PASSWORD, startTestServer, tempDir } from './helpers.js';
import { ROTOR_BIN } from './rotor-process.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

interface Event {
  type: string;
  at: string;
  ip: string | null;
  userAgent: string | null;
  sessionId: string | null;
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`audit log [${dialect.name}]`, () => {
    it('records each security event with time, address and user agent; GET /auth/events lists only the caller’s, newest first', async () => {
      const { app, clock } = await startTestServer(
        dir,
        { ROTOR_REFRESH_GRACE: '1s' },
        dialect.name,
      );
      try {
        const from = { remoteAddress: '203.0.113.5', headers: { 'user-agent': 'AuditTest/1.0' } };
        const post = (url: string, payload: object, headers: Record<string, string> = {}) =>
          app.inject({
            method: 'POST',
            url,
            payload,
            ...from,
            headers: { ...from.headers, ...headers },
          });
        const step = () => clock.advance(1_000);
        for (const email of ['ada@example.com', 'bob@example.com']) {
          await post('/auth/register', { email, password: PASSWORD });
        }
        expect(
          (await post('/auth/login', { email: 'ada@example.com', password: 'wrong password' }))
            .statusCode,
        ).toBe(401);
        step();
        const body = { 'token-delivery': 'body' };
        const first = (
          await post('/auth/login', { email: 'ada@example.com', password: PASSWORD }, body)
        ).json();
        step();
        // Refreshed from where the session was last used: no event. From elsewhere: an event.
        const same = (await post('/auth/refresh', { refreshToken: first.refreshToken })).json();
        step();
        const rotated = (
          await post(
            '/auth/refresh',
            { refreshToken: same.refreshToken },
            { 'user-agent': 'AuditTest/2.0 (moved)' },
          )
        ).json();
        step();
        step();
        // An old token again, past the grace window: theft, the session is revoked.
        expect(
          (await post('/auth/refresh', { refreshToken: first.refreshToken })).json().error,
        ).toBe('refresh_token_reused');
        step();
        const second = (
          await post('/auth/login', { email: 'ada@example.com', password: PASSWORD }, body)
        ).json();
        const auth = { authorization: `Bearer ${second.accessToken}` };
        step();
        await post(
          '/auth/password',
          { currentPassword: PASSWORD, newPassword: 'another fine passphrase' },
          auth,
        );
        step();
        const third = (
          await post(
            '/auth/login',
            { email: 'ada@example.com', password: 'another fine passphrase' },
            body,
          )
        ).json();
        step();
        await app.inject({
          method: 'DELETE',
          url: `/auth/sessions/${third.sessionId}`,
          ...from,
          headers: { ...from.headers, ...auth },
        });
        step();
        await post('/auth/logout', { refreshToken: second.refreshToken });
        await post('/auth/login', { email: 'bob@example.com', password: 'wrong password' });

        step();
        const fourth = (
          await post(
            '/auth/login',
            { email: 'ada@example.com', password: 'another fine passphrase' },
            body,
          )
        ).json();
        const events = (
          await app.inject({
            method: 'GET',
            url: '/auth/events',
            headers: { authorization: `Bearer ${fourth.accessToken}` },
          })
        ).json().events as Event[];
        expect(events.map((e) => e.type)).toEqual([
          'login_succeeded',
          'logout',
          'session_revoked',
          'login_succeeded',
          'password_changed',
          'login_succeeded',
          'reuse_detected',
          'refresh',
          'login_succeeded',
          'login_failed',
        ]);
        for (const event of events) {
          const userAgent = event.type === 'refresh' ? 'AuditTest/2.0 (moved)' : 'AuditTest/1.0';
          expect(event).toMatchObject({ ip: '203.0.113.5', userAgent });
          expect(Date.parse(event.at)).not.toBeNaN();
        }
        expect(events.find((e) => e.type === 'refresh')!.sessionId).toBe(rotated.sessionId);
        expect(events.find((e) => e.type === 'session_revoked')!.sessionId).toBe(third.sessionId);
        // Bob's failed login is his, not Ada's; Ada's list has none of his.
        const bob = (
          await post('/auth/login', { email: 'bob@example.com', password: PASSWORD }, body)
        ).json();
        const bobs = (
          await app.inject({
            method: 'GET',
            url: '/auth/events',
            headers: { authorization: `Bearer ${bob.accessToken}` },
          })
        ).json().events as Event[];
        expect(bobs.map((e) => e.type)).toEqual(['login_succeeded', 'login_failed']);
      } finally {
        await app.close();
      }
    });

    it('needs an access token', async () => {
      const { app } = await startTestServer(dir, {}, dialect.name);
      try {
        const response = await app.inject({ method: 'GET', url: '/auth/events' });
        expect(response.statusCode).toBe(401);
        expect(response.json().error).toBe('missing_token');
      } finally {
        await app.close();
      }
    });

    it('sign out everywhere over HTTP is recorded as logout_all, not as a logout of each session', async () => {
      const { app } = await startTestServer(dir, {}, dialect.name);
      try {
        const from = { remoteAddress: '203.0.113.9', headers: { 'user-agent': 'AuditTest/3.0' } };
        await app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: 'everywhere@example.com', password: PASSWORD },
        });
        const signIn = async () =>
          (
            await app.inject({
              method: 'POST',
              url: '/auth/login',
              headers: { 'token-delivery': 'body' },
              payload: { email: 'everywhere@example.com', password: PASSWORD },
            })
          ).json() as { accessToken: string };
        await signIn();
        const caller = await signIn();
        const signedOut = await app.inject({
          method: 'POST',
          url: '/auth/logout-all',
          ...from,
          headers: { ...from.headers, authorization: `Bearer ${caller.accessToken}` },
        });
        expect(signedOut.statusCode).toBe(204);
        const reader = await signIn();
        const events = (
          await app.inject({
            method: 'GET',
            url: '/auth/events',
            headers: { authorization: `Bearer ${reader.accessToken}` },
          })
        ).json().events as Event[];
        expect(events.map((e) => e.type)).toEqual([
          'login_succeeded',
          'logout_all',
          'login_succeeded',
          'login_succeeded',
        ]);
        expect(events[1]).toMatchObject({ ip: '203.0.113.9', userAgent: 'AuditTest/3.0' });
      } finally {
        await app.close();
      }
    });

    it('revoking a session twice records one session_revoked event, and tells the second call it changed nothing', async () => {
      const url = await newDatabaseUrl(dialect.name, dir);
      const rotor = await createRotor(loadConfig({ ROTOR_DATABASE_URL: url }));
      try {
        const user = await rotor.register({ email: 'twice@example.com', password: PASSWORD });
        const { session } = await rotor.login({
          email: 'twice@example.com',
          password: PASSWORD,
          deviceName: null,
          delivery: 'body',
          ip: null,
          userAgent: null,
        });
        expect(await rotor.revokeSession(user.id, session.id)).toBe(true);
        expect(await rotor.revokeSession(user.id, session.id)).toBe(false);
        const revoked = (await rotor.listEvents(user.id)).items.filter(
          (e) => e.type === 'session_revoked',
        );
        expect(revoked).toHaveLength(1);
      } finally {
        await rotor.close();
      }
    });

    it('the retention job deletes events older than ROTOR_AUDIT_RETENTION', async () => {
      const clock = new ManualClock(Date.UTC(2030, 0, 1));
      const url = await newDatabaseUrl(dialect.name, dir);
      const rotor = await createRotor(
        loadConfig({ ROTOR_DATABASE_URL: url, ROTOR_AUDIT_RETENTION: '30d' }),
        { clock },
      );
      try {
        const user = await rotor.register({ email: 'old@example.com', password: PASSWORD });
        const login = () =>
          rotor.login({
            email: 'old@example.com',
            password: PASSWORD,
            deviceName: null,
            delivery: 'body',
            ip: null,
            userAgent: null,
          });
        await login();
        clock.advance(31 * 86_400_000);
        await login();
        const report = await rotor.prune();
        expect(report.events).toBe(1);
        expect((await rotor.listEvents(user.id)).items.map((e) => e.at)).toEqual([clock.now()]);
      } finally {
        await rotor.close();
      }
    });
  });
}

describe('rotor events --email', () => {
  it("prints the user's events as JSON, revocations from the CLI included", async () => {
    const url = await newDatabaseUrl('sqlite', dir);
    const rotor = await createRotor(loadConfig({ ROTOR_DATABASE_URL: url }));
    await rotor.register({ email: 'cli@example.com', password: PASSWORD });
    await rotor.login({
      email: 'cli@example.com',
      password: PASSWORD,
      deviceName: null,
      delivery: 'body',
      ip: '192.0.2.1',
      userAgent: 'curl/8',
    });
    await rotor.close();
    const run = promisify(execFile);
    const env = { ...process.env, ROTOR_DATABASE_URL: url, ROTOR_LOG_LEVEL: 'warn' };
    await run(
      process.execPath,
      [ROTOR_BIN, 'sessions', 'revoke', '--email', 'cli@example.com', '--all'],
      { env },
    );
    const { stdout } = await run(
      process.execPath,
      [ROTOR_BIN, 'events', '--email', 'CLI@example.com'],
      { env },
    );
    const events = (JSON.parse(stdout) as { events: Event[] }).events;
    expect(events.map((e) => [e.type, e.ip, e.userAgent])).toEqual([
      ['logout_all', null, 'rotor cli'],
      ['login_succeeded', '192.0.2.1', 'curl/8'],
    ]);
  });
});
