import { afterAll, describe, expect, it } from 'vitest';
import { createRotor, createServer, ManualClock, type KyselyStore } from '@rotor/server';
import { DIALECTS, PASSWORD, tempDir, testConfig } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const DAY = 86_400_000;
const client = { ip: null, userAgent: null };

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`retention [${dialect.name}]`, () => {
    it('prunes ended sessions and expired rotated tokens, and nothing a rule still needs', async () => {
      const clock = new ManualClock(Date.UTC(2030, 0, 1));
      const rotor = await createRotor(
        await testConfig(dir, { ROTOR_RETENTION: '7d' }, dialect.name),
        { clock },
      );
      const db = (rotor.store as KyselyStore).db;
      const count = async (table: 'sessions' | 'user_tokens') =>
        Number(
          (
            await db
              .selectFrom(table)
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      try {
        await rotor.register({ email: 'keep@example.com', password: PASSWORD });
        const login = () =>
          rotor.login({
            email: 'keep@example.com',
            password: PASSWORD,
            deviceName: null,
            delivery: 'body',
            ...client,
          });
        const loggedOut = await login();
        const idle = await login();
        let active = await login();
        const firstActiveToken = active.refreshToken;
        await rotor.logoutWithRefreshToken(loggedOut.refreshToken);
        expect(idle.session.id).toBeTruthy();

        // Nothing has ended long enough ago yet.
        expect(await rotor.prune()).toMatchObject({ sessions: 0, rotatedTokens: 0 });

        // The active session refreshes every 6 days; the idle one expires after 7 days.
        for (let i = 0; i < 3; i += 1) {
          clock.advance(6 * DAY);
          active = await rotor.refresh({ refreshToken: active.refreshToken, ...client });
        }
        expect(await count('sessions')).toBe(3);
        const report = await rotor.prune();
        // logged out at day 0 and idle since day 7: both ended over 7 days before day 18.
        expect(report.sessions).toBe(2);
        // The first rotated token expired on day 7, the second on day 13: only the first is old enough.
        expect(report.rotatedTokens).toBe(1);
        expect(await count('sessions')).toBe(1);
        expect(await count('user_tokens')).toBe(3);

        // The live session is untouched, and a recent rotated token is still recognized as re-use…
        expect((await rotor.listSessions(active.user.id)).items.map((s) => s.id)).toEqual([
          active.session.id,
        ]);
        // …while the pruned one is simply unknown now, and does not end the session.
        await expect(
          rotor.refresh({ refreshToken: firstActiveToken, ...client }),
        ).rejects.toMatchObject({ code: 'invalid_token' });
        const next = await rotor.refresh({ refreshToken: active.refreshToken, ...client });
        expect(next.session.id).toBe(active.session.id);
      } finally {
        await rotor.close();
      }
    });

    it('the background job prunes on its own every ROTOR_PRUNE_INTERVAL', async () => {
      const clock = new ManualClock(Date.UTC(2030, 0, 1));
      const config = await testConfig(
        dir,
        { ROTOR_RETENTION: '0', ROTOR_PRUNE_INTERVAL: '1s' },
        dialect.name,
      );
      const app = await createServer(config, { clock, logger: false });
      try {
        await app.rotor.register({ email: 'job@example.com', password: PASSWORD });
        const grant = await app.rotor.login({
          email: 'job@example.com',
          password: PASSWORD,
          deviceName: null,
          delivery: 'body',
          ...client,
        });
        await app.rotor.logoutWithRefreshToken(grant.refreshToken);
        clock.advance(1_000);
        const db = (app.rotor.store as KyselyStore).db;
        await expect
          .poll(async () => (await db.selectFrom('sessions').select('id').execute()).length, {
            timeout: 5_000,
            interval: 200,
          })
          .toBe(0);
      } finally {
        await app.close();
      }
    });
  });
}
