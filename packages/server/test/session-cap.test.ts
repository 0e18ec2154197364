import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createRotor, loadConfig, ManualClock, type Rotor } from '@rotor/server';
import { codeOf, DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/**
 * Issue 13, item 12: 300 logins made 300 live sessions. Live sessions per user are capped
 * (`ROTOR_MAX_SESSIONS`, default 100); a login past the cap ends the least recently used one, with
 * an audit event, in the transaction that creates the new one.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`the session cap [${dialect.name}]`, () => {
    const opened: Rotor[] = [];
    afterEach(async () => {
      for (const rotor of opened.splice(0)) await rotor.close();
    });
    async function open(env: Record<string, string>) {
      const clock = new ManualClock(Date.UTC(2030, 0, 1, 12));
      const rotor = await createRotor(
        loadConfig({ ROTOR_DATABASE_URL: await newDatabaseUrl(dialect.name, dir), ...env }),
        { clock },
      );
      opened.push(rotor);
      return { rotor, clock };
    }
    const login = (rotor: Rotor, email: string) =>
      rotor.login({
        email,
        password: PASSWORD,
        deviceName: null,
        delivery: 'body',
        ip: '203.0.113.5',
        userAgent: 'vitest',
      });

    it('a login past ROTOR_MAX_SESSIONS ends the least recently used session, audited', async () => {
      const { rotor, clock } = await open({ ROTOR_MAX_SESSIONS: '3' });
      const user = await rotor.register({ email: 'cap@example.com', password: PASSWORD });
      const first = await login(rotor, 'cap@example.com');
      clock.advance(1_000);
      const second = await login(rotor, 'cap@example.com');
      clock.advance(1_000);
      await login(rotor, 'cap@example.com');
      clock.advance(1_000);
      // The oldest session is used again: the second is now the least recently used.
      const firstAgain = await rotor.refresh({
        refreshToken: first.refreshToken,
        ip: '203.0.113.5',
        userAgent: 'vitest',
      });
      clock.advance(1_000);
      const fourth = await login(rotor, 'cap@example.com');
      const live = (await rotor.listSessions(user.id)).items.map((s) => s.id);
      expect(live).toHaveLength(3);
      expect(live).not.toContain(second.session.id);
      expect(live).toContain(fourth.session.id);
      expect(
        await codeOf(
          rotor.refresh({ refreshToken: second.refreshToken, ip: null, userAgent: null }),
        ),
      ).toBe('session_revoked');
      expect(await codeOf(rotor.authenticate(second.accessToken))).toBe('session_revoked');
      expect(await codeOf(rotor.authenticate(firstAgain.accessToken))).toBe('ok');
      const evicted = (await rotor.listEvents(user.id)).items.filter(
        (e) => e.type === 'session_evicted',
      );
      expect(evicted.map((e) => e.session_id)).toEqual([second.session.id]);
    });

    it('caps at 100 live sessions by default, however many logins run at once', async () => {
      const { rotor } = await open({ ROTOR_RATE_LIMIT: 'off' });
      const user = await rotor.register({ email: 'many@example.com', password: PASSWORD });
      const results = await Promise.all(
        Array.from({ length: 130 }, () => codeOf(login(rotor, 'many@example.com'))),
      );
      expect(results.every((r) => r === 'ok')).toBe(true);
      const first = await rotor.listSessions(user.id, { limit: 100 });
      expect(first.items).toHaveLength(100);
      expect(first.nextCursor).toBeNull();
    }, 60_000);
  });
}
