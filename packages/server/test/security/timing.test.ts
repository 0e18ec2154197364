import { afterAll, describe, expect, it } from 'vitest';
import { createRotor, loadConfig, type RotorError } from '@rotor/server';
import { newDatabaseUrl, PASSWORD, tempDir } from '../helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

describe('login timing', () => {
  it('an unknown email and a known email with a wrong password take the same time (medians of interleaved samples)', async () => {
    // Limits off: thirty wrong passwords for one account would otherwise be refused early, which
    // is itself a timing difference, only one the attacker already sees as 429.
    const rotor = await createRotor(
      loadConfig({
        ROTOR_DATABASE_URL: await newDatabaseUrl('sqlite', dir),
        ROTOR_RATE_LIMIT: 'off',
      }),
    );
    try {
      await rotor.register({ email: 'known@example.com', password: PASSWORD });
      const attempt = async (email: string) => {
        const started = performance.now();
        try {
          await rotor.login({
            email,
            password: 'not the password',
            deviceName: null,
            delivery: 'body',
            ip: '192.0.2.1',
            userAgent: 'timing',
          });
        } catch (error) {
          expect((error as RotorError).code).toBe('invalid_credentials');
        }
        return performance.now() - started;
      };
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 3; i += 1) await attempt('known@example.com'); // warm-up
      // Interleaved, alternating which goes first, so drift in load hits both alike.
      for (let i = 0; i < 30; i += 1) {
        const email = `nobody${i}@example.com`;
        if (i % 2) {
          known.push(await attempt('known@example.com'));
          unknown.push(await attempt(email));
        } else {
          unknown.push(await attempt(email));
          known.push(await attempt('known@example.com'));
        }
      }
      const ratio = median(unknown) / median(known);
      // Both pay a full argon2id verification (milliseconds, not microseconds)...
      expect(median(known)).toBeGreaterThan(5);
      expect(median(unknown)).toBeGreaterThan(5);
      // ...so their medians agree within noise; skipping the hash would make this ratio ~0.01.
      expect(ratio).toBeGreaterThan(0.75);
      expect(ratio).toBeLessThan(1.33);
    } finally {
      await rotor.close();
    }
  }, 60_000);
});
