import express from 'express';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { requireSession } from '@rotor/server/express';
import { rotorPlugin } from '@rotor/server/fastify';
import { createWebHandler } from '@rotor/server/web';
import { dpopKey } from '../dpop-kit.js';
import { DIALECTS, PASSWORD, tempDir, testConfig } from '../helpers.js';

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
