import { afterAll, describe, expect, it } from 'vitest';
import { createRotor, type DirectoryUser, type UserDirectory } from '@rotor/server';
import { DIALECTS, PASSWORD, tempDir, testConfig } from '../helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** An app's user table that signs in by username or by email (findByLogin: what the user typed). */
class AppUsers implements UserDirectory {
  constructor(private readonly alice: DirectoryUser) {}
  async findByLogin(login: string) {
    const typed = login.trim().toLowerCase();
    return typed === 'alice' || typed === this.alice.email ? this.alice : undefined;
  }
  async findById(id: string) {
    return id === this.alice.id ? this.alice : undefined;
  }
  async updatePasswordHash() {}
}

/**
 * The account budget keyed on what was typed: with the app's own user table, two spellings that
 * name one account (username and email, or a folding the app does and Rotor does not) got a budget
 * each, so guessing through both doubled the guesses before the lockout. Each guess here comes
 * from another address, as from a botnet, so only the account budget stands in the way.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(
    `a directory user's login spellings [${dialect.name}]`,
    () => {
      it('share one account budget', async () => {
        const rotor = await createRotor(
          await testConfig(dir, { ROTOR_RATE_LIMIT_LOGIN: '3/15m' }, dialect.name),
          {
            users: new AppUsers({
              id: 'app-user-1',
              email: 'alice@example.com',
              passwordHash: await (await import('@node-rs/argon2')).hash(PASSWORD),
            }),
          },
        );
        try {
          const codes: string[] = [];
          let n = 0;
          const guess = async (email: string) => {
            n += 1;
            try {
              await rotor.login({
                email,
                password: `wrong guess ${n}`,
                deviceName: null,
                delivery: 'body',
                ip: `203.0.113.${n}`,
                userAgent: null,
              });
              codes.push('ok');
            } catch (error) {
              codes.push((error as { code: string }).code);
            }
          };
          for (let i = 0; i < 3; i++) await guess('alice@example.com');
          await guess('alice@example.com');
          await guess('alice');
          await guess('ALICE');
          expect(codes).toEqual([
            'invalid_credentials',
            'invalid_credentials',
            'invalid_credentials',
            'rate_limited',
            'rate_limited',
            'rate_limited',
          ]);
        } finally {
          await rotor.close();
        }
      });
    },
  );
}
