import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, newDatabaseUrl, tempDir } from '../helpers.js';
import { startRotorPair, type RotorProcess } from '../rotor-process.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const ADMIN_TOKEN = 'an-admin-token-of-forty-characters-long!';

/**
 * One login ticket redeemed at once over many sockets against two instances of one database:
 * exactly one session. And the admin token, sent right and wrong, never reaches the logs.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`ticket double redemption [${dialect.name}]`, () => {
    let instances: RotorProcess[] = [];
    beforeAll(async () => {
      instances = await startRotorPair({
        ROTOR_DATABASE_URL: await newDatabaseUrl(dialect.name, dir),
        ROTOR_ADMIN_TOKEN: ADMIN_TOKEN,
        ROTOR_RATE_LIMIT: 'off',
        ROTOR_LOG_LEVEL: 'debug',
      });
    });
    afterAll(async () => {
      await Promise.all(instances.map((instance) => instance.stop()));
    });

    const admin = (i: number, path: string, body: unknown, token = ADMIN_TOKEN) =>
      fetch(`${instances[i % 2]!.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });

    it('each of 8 tickets, redeemed 12 times at once across both instances, signs in once', async () => {
      const created = await admin(0, '/admin/users', { email: 'race@example.com' });
      expect(created.status).toBe(201);
      const { user } = (await created.json()) as { user: { id: string } };
      for (let round = 0; round < 8; round++) {
        const issued = await admin(round, '/admin/login-tickets', { userId: user.id });
        const { ticket } = (await issued.json()) as { ticket: string };
        const statuses = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            fetch(`${instances[i % 2]!.url}/auth/login`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'token-delivery': 'body' },
              body: JSON.stringify({ ticket }),
            }).then((r) => r.status),
          ),
        );
        expect(statuses.filter((s) => s === 200)).toHaveLength(1);
        expect(statuses.filter((s) => s === 401)).toHaveLength(11);
      }
      expect(
        (await admin(1, '/admin/users', { email: 'x@example.com' }, 'x'.repeat(40))).status,
      ).toBe(401);
      for (const instance of instances) expect(instance.logs()).not.toContain(ADMIN_TOKEN);
    });
  });
}
