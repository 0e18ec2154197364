import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createServer, ManualClock } from '@rotor/server';
import { DIALECTS, tempDir, testConfig } from '../helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/**
 * The app's claims hook failing (its roles table unreachable for a moment) after Rotor committed:
 * a sign-in left a live session nobody holds (counted against the session cap, audited as a
 * success), and a refresh rotated a token the client never received, so its retry after the grace
 * window was a "reuse" that revoked the session. The hook now runs before anything commits.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`a failing claims hook [${dialect.name}]`, () => {
    let app: FastifyInstance;
    afterEach(() => app?.close());

    it('a sign-in leaves no session; a refresh leaves the token unrotated', async () => {
      let failing = false;
      const clock = new ManualClock(Date.now());
      app = await createServer(await testConfig(dir, {}, dialect.name), {
        clock,
        logger: false,
        claims: () => {
          if (failing) throw new Error('roles table unreachable');
          return { roles: ['reader'] };
        },
      });
      const user = await app.rotor.createUser({ email: 'claims@example.com' });
      const signIn = () =>
        app.rotor.signIn({ userId: user.id, delivery: 'body', ip: null, userAgent: null });

      failing = true;
      await expect(signIn()).rejects.toThrow('roles table unreachable');
      expect(await app.rotor.store.listLiveSessionIdsByUse(user.id, clock.now())).toEqual([]);

      failing = false;
      const grant = await signIn();
      const refresh = () =>
        app.rotor.refresh({ refreshToken: grant.refreshToken, ip: null, userAgent: null });
      failing = true;
      await expect(refresh()).rejects.toThrow('roles table unreachable');
      failing = false;
      // The client retries later with the token it holds.
      clock.advance(60_000);
      const retried = await refresh();
      expect(retried.session.id).toBe(grant.session.id);
    });
  });
}
