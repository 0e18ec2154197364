import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from '../helpers.js';
import { call, startRotorPair, type RotorProcess } from '../rotor-process.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

type Answer = { status: number; body: Record<string, unknown> };
/** The answers that verified a password: a success, or a wrong password. */
const verified = (answers: Answer[]) =>
  answers.filter((a) => a.status < 300 || a.body.error === 'invalid_credentials');
/** The answers that verified a wrong password: the guesses the budget admitted. */
const wrong = (answers: Answer[]) => answers.filter((a) => a.body.error === 'invalid_credentials');
/** The answers refused by a rate limit before any verification. */
const refused = (answers: Answer[]) => answers.filter((a) => a.body.error === 'rate_limited');

/**
 * Issue 13, item 1: a budget of N admits at most N password verifications in any window, whatever
 * the concurrency and the number of instances. Every attack here sends all its requests at once,
 * over many sockets, to two `rotor serve` processes on one database. Before the fix (a check
 * before the hash, a count after it) every one of them was verified.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`concurrent password guessing [${dialect.name}]`, () => {
    let instances: RotorProcess[] = [];

    beforeAll(async () => {
      instances = await startRotorPair({
        ROTOR_DATABASE_URL: await newDatabaseUrl(dialect.name, dir),
      });
    });
    afterAll(async () => {
      await Promise.all(instances.map((instance) => instance.stop()));
    });

    const register = async (email: string) => {
      const answer = await call(instances[0]!.url, 'POST', '/auth/register', {
        body: { email, password: PASSWORD },
      });
      expect(answer.status).toBe(201);
    };
    /** Sends every request at once, alternating between the two instances. */
    const allAtOnce = (count: number, request: (url: string, i: number) => Promise<Answer>) =>
      Promise.all(Array.from({ length: count }, (_, i) => request(instances[i % 2]!.url, i)));

    it('45 simultaneous logins for one account (44 wrong, the right one among them) verify at most 5 wrong passwords', async () => {
      const email = `guessed-${dialect.name}@example.com`;
      await register(email);
      const right = Math.floor(Math.random() * 45);
      const answers = await allAtOnce(45, (url, i) =>
        call(url, 'POST', '/auth/login', {
          body: { email, password: i === right ? PASSWORD : `wrong guess ${i}` },
          headers: { 'token-delivery': 'body' },
        }),
      );
      // The right password gives its place back (honest sign-ins spend nothing), so a sixth
      // verification may follow it: at most 5 wrong guesses, whatever the order.
      expect(wrong(answers).length).toBeLessThanOrEqual(5);
      expect(verified(answers).length - wrong(answers).length).toBeLessThanOrEqual(1);
      expect(verified(answers).length + refused(answers).length).toBe(45);
    });

    it('30 simultaneous password changes with a stolen access token verify at most 5 wrong current passwords', async () => {
      const email = `stolen-${dialect.name}@example.com`;
      await register(email);
      const login = await call(instances[0]!.url, 'POST', '/auth/login', {
        body: { email, password: PASSWORD },
        headers: { 'token-delivery': 'body' },
      });
      const token = login.body.accessToken as string;
      const right = Math.floor(Math.random() * 30);
      const answers = await allAtOnce(30, (url, i) =>
        call(url, 'POST', '/auth/password', {
          token,
          body: {
            currentPassword: i === right ? PASSWORD : `wrong guess ${i}`,
            newPassword: 'the attacker now owns it',
          },
        }),
      );
      expect(wrong(answers).length).toBeLessThanOrEqual(5);
      expect(verified(answers).length - wrong(answers).length).toBeLessThanOrEqual(1);
      expect(verified(answers).length + refused(answers).length).toBe(30);
    });

    it('70 simultaneous logins for different accounts from one address verify at most 50 passwords', async () => {
      const answers = await allAtOnce(70, (url, i) =>
        call(url, 'POST', '/auth/login', {
          body: { email: `nobody-${i}-${dialect.name}@example.com`, password: 'a guess at it' },
        }),
      );
      expect(verified(answers).length).toBeLessThanOrEqual(50);
      expect(verified(answers).length + refused(answers).length).toBe(70);
    });
  });
}
