import express from 'express';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { requireSession } from '@rotor/server/express';
import { rotorPlugin } from '@rotor/server/fastify';
import { createWebHandler } from '@rotor/server/web';
import { dpopKey } from '../dpop-kit.js';
import {
  DIALECTS,
  PASSWORD,
  registerUser,
  startTestServer,
  tempDir,
  testConfig,
} from '../helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const ENV = { ROTOR_ISSUER: 'http://app.test/rotor', ROTOR_RATE_LIMIT: 'off' };

/**
 * Issue 18, attacked from the application's side: a DPoP-bound access token (`cnf.jkt`) copied
 * from the client is useless without the key on Rotor's own routes; it must be just as useless on
 * the application's routes guarded by `requireSession` (Fastify, Express) and `getSession` (web),
 * or the binding protects nothing the application cares about.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`DPoP attacks on the app's routes [${dialect.name}]`, () => {
    it('a stolen bound access token is refused by requireSession and getSession without the key', async () => {
      const app = Fastify({ logger: false });
      await app.register(rotorPlugin, {
        config: await testConfig(dir, ENV, dialect.name),
        prefix: '/rotor',
      });
      app.get('/api/me', { preHandler: app.requireSession }, async (request) => ({
        userId: request.user!.id,
      }));
      await app.ready();
      const web = await createWebHandler({ rotor: app.rotor as never, prefix: '/web' });
      const router = express();
      router.get('/api/me', requireSession(app.rotor as never), (request, response) => {
        response.json({ userId: (request as unknown as { user: { id: string } }).user.id });
      });
      const server = router.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as { port: number };
      try {
        const email = `victim-${Math.random()}@example.com`;
        await app.rotor.register({ email, password: PASSWORD });
        const key = await dpopKey('ES256', () => Math.floor(app.rotor.clock.now() / 1000));
        const login = await app.inject({
          method: 'POST',
          url: '/rotor/auth/login',
          headers: {
            'token-delivery': 'body',
            dpop: await key.proof('POST', 'http://app.test/rotor/auth/login'),
          },
          payload: { email, password: PASSWORD },
        });
        expect(login.statusCode, login.body).toBe(200);
        const { accessToken, tokenType } = login.json() as {
          accessToken: string;
          tokenType: string;
        };
        expect(tokenType).toBe('DPoP');

        // The thief has the token, not the key.
        const asBearer = await app.inject({
          method: 'GET',
          url: '/api/me',
          headers: { authorization: `Bearer ${accessToken}` },
        });
        expect(asBearer.statusCode, asBearer.body).toBe(401);
        expect(asBearer.headers['www-authenticate']).toMatch(/^DPoP /);
        const asCookie = await app.inject({
          method: 'GET',
          url: '/api/me',
          headers: { cookie: `rotor_access=${accessToken}` },
        });
        expect(asCookie.statusCode, asCookie.body).toBe(401);
        const noProof = await app.inject({
          method: 'GET',
          url: '/api/me',
          headers: { authorization: `DPoP ${accessToken}` },
        });
        expect(noProof.statusCode, noProof.body).toBe(401);
        const thief = await dpopKey('ES256', () => Math.floor(app.rotor.clock.now() / 1000));
        const thiefProof = await app.inject({
          method: 'GET',
          url: '/api/me',
          headers: {
            authorization: `DPoP ${accessToken}`,
            dpop: await thief.proof('GET', 'http://app.test/api/me', { accessToken }),
          },
        });
        expect(thiefProof.statusCode, thiefProof.body).toBe(401);

        const expressBearer = await fetch(`http://127.0.0.1:${port}/api/me`, {
          headers: { authorization: `Bearer ${accessToken}` },
        });
        expect(expressBearer.status).toBe(401);
        expect(
          await web.getSession(new Headers({ authorization: `Bearer ${accessToken}` })),
        ).toBeNull();
        expect(
          await web.getSession(new Headers({ authorization: `DPoP ${accessToken}` })),
        ).toBeNull();

        // The key's holder still gets in, with a proof for this request.
        const owner = await app.inject({
          method: 'GET',
          url: '/api/me',
          headers: {
            authorization: `DPoP ${accessToken}`,
            dpop: await key.proof('GET', 'http://app.test/api/me', { accessToken }),
          },
        });
        expect(owner.statusCode, owner.body).toBe(200);
        const ownerExpress = await fetch(`http://127.0.0.1:${port}/api/me?x=1`, {
          headers: {
            authorization: `DPoP ${accessToken}`,
            dpop: await key.proof('GET', 'http://app.test/api/me', { accessToken }),
          },
        });
        expect(ownerExpress.status).toBe(200);
      } finally {
        server.close();
        await web.close();
        await app.close();
      }
    });
  });
}

/**
 * A thief holding a bound session's refresh token but not its key is refused with nothing written
 * but a `dpop_key_mismatch` event in the owner's audit log. Without any budget, the thief could
 * write as many rows as it likes: the owner's log buried (the events that matter pushed off its
 * pages) and the table grown without bound. The refusal counts against the address's budget for
 * bad refresh tokens, checked before the event is written.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`DPoP key-mismatch flood [${dialect.name}]`, () => {
    it('key-less refreshes of a bound session write a bounded number of audit events', async () => {
      const server = await startTestServer(dir, {}, dialect.name);
      const { app } = server;
      const issuer = server.config.issuer;
      try {
        const now = () => Math.floor(server.clock.now() / 1000);
        const key = await dpopKey('ES256', now);
        const email = await registerUser(app);
        const login = await app.inject({
          method: 'POST',
          url: '/auth/login',
          headers: {
            'token-delivery': 'body',
            dpop: await key.proof('POST', `${issuer}/auth/login`),
          },
          payload: { email, password: PASSWORD },
        });
        expect(login.statusCode, login.body).toBe(200);
        const { refreshToken, accessToken } = login.json() as {
          refreshToken: string;
          accessToken: string;
        };
        const thief = await dpopKey('ES256', now);
        const codes: number[] = [];
        for (let i = 0; i < 80; i += 1) {
          const response = await app.inject({
            method: 'POST',
            url: '/auth/refresh',
            headers: {
              'token-delivery': 'body',
              // Half without a proof, half with the thief's own key.
              ...(i % 2 === 1 && { dpop: await thief.proof('POST', `${issuer}/auth/refresh`) }),
            },
            payload: { refreshToken },
          });
          codes.push(response.statusCode);
        }
        expect(codes).toContain(429);
        const events = await app.inject({
          method: 'GET',
          url: '/auth/events?limit=100',
          headers: {
            authorization: `DPoP ${accessToken}`,
            dpop: await key.proof('GET', `${issuer}/auth/events`, { accessToken }),
          },
        });
        expect(events.statusCode, events.body).toBe(200);
        const mismatches = (events.json().events as { type: string }[]).filter(
          (e) => e.type === 'dpop_key_mismatch',
        );
        expect(mismatches.length).toBeGreaterThan(0);
        expect(mismatches.length).toBeLessThanOrEqual(60);
        // The owner, with the key, still refreshes: the thief spent its own address's budget only
        // on another address (here the same one, so the owner waits out the window like the thief).
        server.clock.advance(61_000);
        const owner = await app.inject({
          method: 'POST',
          url: '/auth/refresh',
          headers: {
            'token-delivery': 'body',
            dpop: await key.proof('POST', `${issuer}/auth/refresh`),
          },
          payload: { refreshToken },
        });
        expect(owner.statusCode, owner.body).toBe(200);
      } finally {
        await app.close();
      }
    });
  });
}
