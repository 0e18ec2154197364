import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ConfigError, hashLoginTicket, loadConfig, type KyselyStore } from '@rotor/server';
import { DIALECTS, setCookies, startTestServer, tempDir, type TestServer } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const ADMIN_TOKEN = 'an-admin-token-of-forty-characters-long!';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`login tickets and the admin API [${dialect.name}]`, () => {
    let server: TestServer;
    let app: FastifyInstance;
    afterEach(() => app?.close());
    const start = async (env: Record<string, string> = { ROTOR_ADMIN_TOKEN: ADMIN_TOKEN }) => {
      server = await startTestServer(dir, env, dialect.name);
      app = server.app;
    };
    const createUser = async () => {
      const response = await app.inject({
        method: 'POST',
        url: '/admin/users',
        headers: admin,
        payload: { email: `sso-${Math.random()}@example.com`, name: 'Sso' },
      });
      expect(response.statusCode).toBe(201);
      return response.json().user as { id: string; email: string };
    };
    const issue = async (userId: string, deviceName?: string) => {
      const response = await app.inject({
        method: 'POST',
        url: '/admin/login-tickets',
        headers: admin,
        payload: { userId, ...(deviceName && { deviceName }) },
      });
      return response;
    };
    const redeem = (ticket: string, delivery = 'body') =>
      app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { 'token-delivery': delivery },
        payload: { ticket },
      });

    it('a ticket signs in once, like a password login; only its hash is stored', async () => {
      await start();
      const user = await createUser();
      const issued = await issue(user.id, 'Work laptop');
      expect(issued.statusCode).toBe(201);
      const { ticket, expiresIn } = issued.json();
      expect(expiresIn).toBe(60);
      expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const rows = await (app.rotor.store as KyselyStore).db
        .selectFrom('login_tickets')
        .selectAll()
        .execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]!.ticket_hash).toBe(hashLoginTicket(ticket));
      expect(JSON.stringify(rows)).not.toContain(ticket);

      const first = await redeem(ticket);
      expect(first.statusCode).toBe(200);
      expect(first.json()).toMatchObject({ tokenType: 'Bearer', user: { id: user.id } });
      expect(first.json().refreshToken).toBeTypeOf('string');
      const session = await app.rotor.store.findSession(first.json().sessionId);
      expect(session!.device_name).toBe('Work laptop');
      const again = await redeem(ticket);
      expect(again.statusCode).toBe(401);
      expect(again.json().error).toBe('invalid_credentials');
      const events = await app.rotor.listEvents(user.id);
      expect(events.items.map((e) => e.type)).toEqual(
        expect.arrayContaining(['user_created', 'login_ticket_issued', 'login_succeeded']),
      );
    });

    it('cookie delivery sets the session cookies and the device cookie', async () => {
      await start();
      const user = await createUser();
      const response = await redeem((await issue(user.id)).json().ticket, 'cookies');
      expect(response.statusCode).toBe(200);
      const cookies = setCookies(response);
      expect([...cookies.keys()]).toEqual(
        expect.arrayContaining(['rotor_access', 'rotor_refresh', 'rotor_device']),
      );
    });

    it('a ticket expires after 60 s; prune removes it', async () => {
      await start();
      const user = await createUser();
      const { ticket } = (await issue(user.id)).json();
      server.clock.advance(60_000);
      expect((await redeem(ticket)).json().error).toBe('invalid_credentials');
      expect((await app.rotor.prune()).loginTickets).toBe(1);
    });

    it('unknown user: 404 not_found; unknown ticket: 401 invalid_credentials; both bodies: 400', async () => {
      await start();
      const missing = await issue('no-such-user');
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error).toBe('not_found');
      expect((await redeem('x'.repeat(43))).json().error).toBe('invalid_credentials');
      const both = await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { ticket: 'x', email: 'a@example.com', password: 'whatever1' },
      });
      expect(both.statusCode).toBe(400);
    });

    it('failed redemptions count against the address’s login budget', async () => {
      await start({ ROTOR_ADMIN_TOKEN: ADMIN_TOKEN, ROTOR_RATE_LIMIT_LOGIN_ADDRESS: '3/15m' });
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) codes.push((await redeem('y'.repeat(43))).json().error);
      expect(codes).toEqual([
        'invalid_credentials',
        'invalid_credentials',
        'invalid_credentials',
        'rate_limited',
      ]);
    });

    it('a taken email on POST /admin/users is 409 email_taken with the account’s id; /auth/register never tells it', async () => {
      await start();
      const user = await createUser();
      const again = await app.inject({
        method: 'POST',
        url: '/admin/users',
        headers: admin,
        payload: { email: user.email.toUpperCase() },
      });
      expect(again.statusCode).toBe(409);
      expect(again.json()).toMatchObject({ error: 'email_taken', details: { userId: user.id } });
      const register = await app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email: user.email, password: 'correct horse battery' },
      });
      expect(register.statusCode).toBe(409);
      expect(register.json().error).toBe('email_taken');
      expect(register.json()).not.toHaveProperty('details');
      expect(register.body).not.toContain(user.id);
    });

    it('the admin token: missing or wrong is 401 with a Bearer challenge', async () => {
      await start();
      for (const headers of [{}, { authorization: `Bearer ${ADMIN_TOKEN}x` }]) {
        const response = await app.inject({
          method: 'POST',
          url: '/admin/users',
          headers,
          payload: { email: 'x@example.com' },
        });
        expect(response.statusCode).toBe(401);
        expect(['missing_token', 'invalid_token']).toContain(response.json().error);
        expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
      }
    });

    it('without ROTOR_ADMIN_TOKEN there is no admin API: 404 like any unknown route', async () => {
      await start({});
      const response = await app.inject({
        method: 'POST',
        url: '/admin/login-tickets',
        headers: admin,
        payload: { userId: 'x' },
      });
      expect(response.statusCode).toBe(404);
      expect(response.json().error).toBe('not_found');
    });

    it('of 20 concurrent redemptions over real sockets exactly one wins', async () => {
      await start();
      const user = await createUser();
      const { ticket } = (await issue(user.id)).json();
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as { port: number };
      const statuses = await Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`http://127.0.0.1:${port}/auth/login`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'token-delivery': 'body' },
            body: JSON.stringify({ ticket }),
          }).then((r) => r.status),
        ),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 401)).toHaveLength(19);
    });
  });
}

describe('ROTOR_ADMIN_TOKEN', () => {
  it('shorter than 32 characters stops the start with a ConfigError naming it', () => {
    const load = () =>
      loadConfig({ ROTOR_DATABASE_URL: 'sqlite::memory:', ROTOR_ADMIN_TOKEN: 'x'.repeat(31) });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/ROTOR_ADMIN_TOKEN/);
    expect(
      loadConfig({ ROTOR_DATABASE_URL: 'sqlite::memory:', ROTOR_ADMIN_TOKEN: 'x'.repeat(32) })
        .adminToken,
    ).toBe('x'.repeat(32));
  });
});
