import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { rotorPlugin } from '@rotor/server/fastify';
import { createWebHandler } from '@rotor/server/web';
import { DIALECTS, PASSWORD, tempDir, testConfig } from '../helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const ORIGIN = 'http://127.0.0.1:3000';
const ENV = { ROTOR_ISSUER: 'http://app.test/rotor', ROTOR_ALLOWED_ORIGINS: ORIGIN };

/**
 * Cookie tossing on the application's own routes: a sibling subdomain sets a `rotor_access` cookie
 * of the attacker's account for the parent domain (with a longer path, so browsers send it first).
 * Rotor's own routes refuse a repeated token cookie; `requireSession` and `getSession` must too, or
 * the victim's app requests run as the attacker (notes saved into the attacker's account).
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(
    `cookie tossing on the app's routes [${dialect.name}]`,
    () => {
      it('requireSession refuses a repeated rotor_access cookie; getSession answers null', async () => {
        const app = Fastify({ logger: false });
        await app.register(rotorPlugin, {
          config: await testConfig(dir, ENV, dialect.name),
          prefix: '/rotor',
        });
        app.get('/api/me', { preHandler: app.requireSession }, async (request) => ({
          userId: request.user!.id,
        }));
        const base = await app.listen({ host: '127.0.0.1', port: 0 });
        // The same engine behind a web handler: `getSession` reads the same cookies.
        const web = await createWebHandler({ rotor: app.rotor as never, prefix: '/web' });
        try {
          const tokens: Record<string, string> = {};
          for (const who of ['victim', 'attacker']) {
            const email = `${who}-${Math.random()}@example.com`;
            await app.rotor.register({ email, password: PASSWORD });
            const response = await fetch(`${base}/rotor/auth/login`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'token-delivery': 'cookies' },
              body: JSON.stringify({ email, password: PASSWORD }),
            });
            expect(response.status).toBe(200);
            const line = response.headers
              .getSetCookie()
              .find((l) => l.startsWith('rotor_access='))!;
            tokens[who] = line.slice('rotor_access='.length, line.indexOf(';'));
          }
          const cookie = `rotor_access=${tokens.attacker}; rotor_access=${tokens.victim}`;
          const tossed = await fetch(`${base}/api/me`, { headers: { cookie } });
          expect(tossed.status).toBe(400);
          expect(((await tossed.json()) as { error: string }).error).toBe('invalid_request');
          expect(await web.getSession(new Headers({ cookie }))).toBeNull();
          // One cookie still works.
          const own = await fetch(`${base}/api/me`, {
            headers: { cookie: `rotor_access=${tokens.victim}` },
          });
          expect(own.status).toBe(200);
        } finally {
          await web.close();
          await app.close();
        }
      });
    },
  );
}
