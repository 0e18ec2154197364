import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createRotor,
  createServer,
  ManualClock,
  type KyselyStore,
  type Rotor,
} from '@rotor/server';
import { codeOf, DIALECTS, PASSWORD, tempDir, testConfig } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const client = { ip: null, userAgent: null };

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`signing-key rotation [${dialect.name}]`, () => {
    it('the new key signs at once; the old one verifies until its tokens expired, then retires', async () => {
      const clock = new ManualClock(Date.UTC(2030, 0, 1));
      const config = await testConfig(dir, { ROTOR_ACCESS_TTL: '15m' }, dialect.name);
      const a: Rotor = await createRotor(config, { clock });
      // A second instance on the same database, as another process would be (on SQLite, the CLI's:
      // one server per file).
      const b: Rotor = await createRotor(config, { clock, sqliteServerLock: false });
      try {
        await a.register({ email: 'keys@example.com', password: PASSWORD });
        const login = (rotor: Rotor) =>
          rotor.login({
            email: 'keys@example.com',
            password: PASSWORD,
            deviceName: null,
            delivery: 'body',
            ...client,
          });
        const before = await login(a);
        const oldKid = decodeProtectedHeader(before.accessToken).kid;

        const rotated = await a.keys.rotate(config.accessTtl);
        expect(rotated.kid).not.toBe(oldKid);
        const after = await login(a);
        expect(decodeProtectedHeader(after.accessToken).kid).toBe(rotated.kid);

        // Instance B finds the new key on its first unknown kid (at most one re-read a second).
        clock.advance(1_000);
        // Both keys are published; a token minted before the rotation is not rejected early.
        const jwks = a.keys.jwks();
        expect(jwks.keys.map((k) => k.kid).sort()).toEqual([oldKid, rotated.kid].sort());
        for (const token of [before.accessToken, after.accessToken]) {
          await jwtVerify(token, createLocalJWKSet(jwks), { currentDate: new Date(clock.now()) });
          expect((await b.authenticate(token)).user.email).toBe('keys@example.com');
        }

        // Instance B picks up the new signing key within its reload interval.
        clock.advance(31_000);
        expect(decodeProtectedHeader((await login(b)).accessToken).kid).toBe(rotated.kid);

        // Once every token of the old key has expired (15 min + 1 min margin), it leaves the JWKS.
        clock.advance(15 * 60_000 + 60_000);
        await a.keys.reload();
        expect(a.keys.jwks().keys.map((k) => k.kid)).toEqual([rotated.kid]);
        await expect(a.authenticate(before.accessToken)).rejects.toMatchObject({
          code: 'invalid_token',
        });
        expect(
          (await a.refresh({ refreshToken: after.refreshToken, ...client })).accessToken,
        ).toBeTruthy();
      } finally {
        await a.close();
        await b.close();
      }
    });
  });

  describe.skipIf(!dialect.available)(`a leaked key retired at once [${dialect.name}]`, () => {
    it('tokens it signed stop working here and on another instance within a second, cached or not; a refresh gets a working one', async () => {
      const clock = new ManualClock(Date.UTC(2030, 0, 1));
      const config = await testConfig(dir, { ROTOR_ACCESS_TTL: '15m' }, dialect.name);
      const a: Rotor = await createRotor(config, { clock });
      const b: Rotor = await createRotor(config, { clock, sqliteServerLock: false });
      try {
        await a.register({ email: 'leak@example.com', password: PASSWORD });
        const grant = await a.login({
          email: 'leak@example.com',
          password: PASSWORD,
          deviceName: null,
          delivery: 'body',
          ...client,
        });
        const leakedKid = decodeProtectedHeader(grant.accessToken).kid;
        // Both instances have verified the token: it sits in their verified-token caches.
        for (const rotor of [a, b]) {
          expect((await rotor.authenticate(grant.accessToken)).user.email).toBe('leak@example.com');
        }

        // The operator runs `rotor keys rotate --retire-now`: another process on the database.
        const cli: Rotor = await createRotor(config, { clock, sqliteServerLock: false });
        const rotated = await cli.keys.rotate(config.accessTtl, { retireNow: true });
        await cli.close();
        expect(cli.keys.jwks().keys.map((k) => k.kid)).toEqual([rotated.kid]);

        clock.advance(1_000);
        for (const rotor of [a, b]) {
          // SQLite: the next check reads data_version; PostgreSQL: the notification's arrival.
          await expect
            .poll(() => codeOf(rotor.authenticate(grant.accessToken)), { interval: 5 })
            .toBe('invalid_token');
          expect(rotor.keys.jwks().keys.map((k) => k.kid)).toEqual([rotated.kid]);
          expect(rotor.keys.find(leakedKid!)).toBeUndefined();
        }
        // The session lives on: a refresh signs with the new key, which every instance accepts.
        const next = await a.refresh({ refreshToken: grant.refreshToken, ...client });
        expect(decodeProtectedHeader(next.accessToken).kid).toBe(rotated.kid);
        for (const rotor of [a, b]) {
          expect((await rotor.authenticate(next.accessToken)).session.id).toBe(grant.session.id);
        }
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('also retires an older key that was already retiring, and leaves the new one signing', async () => {
      const clock = new ManualClock(Date.UTC(2030, 0, 1));
      const config = await testConfig(dir, { ROTOR_ACCESS_TTL: '15m' }, dialect.name);
      const a: Rotor = await createRotor(config, { clock });
      try {
        const first = a.keys.current.kid;
        const second = (await a.keys.rotate(config.accessTtl)).kid;
        expect(
          a.keys
            .jwks()
            .keys.map((k) => k.kid)
            .sort(),
        ).toEqual([first, second].sort());
        const third = (await a.keys.rotate(config.accessTtl, { retireNow: true })).kid;
        expect(a.keys.jwks().keys.map((k) => k.kid)).toEqual([third]);
        expect(a.keys.current.kid).toBe(third);
      } finally {
        await a.close();
      }
    });
  });

  describe.skipIf(!dialect.available)(
    `signing keys sealed with ROTOR_SECRET [${dialect.name}]`,
    () => {
      it('keeps private keys encrypted at rest, opens them with the same secret, refuses another', async () => {
        const secret = 'a-long-configured-secret-of-32-characters!';
        const config = await testConfig(dir, { ROTOR_SECRET: secret }, dialect.name);
        const first = await createRotor(config);
        await first.register({ email: 'sealed@example.com', password: PASSWORD });
        const grant = await first.login({
          email: 'sealed@example.com',
          password: PASSWORD,
          deviceName: null,
          delivery: 'body',
          ...client,
        });
        const rows = await (first.store as KyselyStore).db
          .selectFrom('signing_keys')
          .select('private_jwk')
          .execute();
        await first.close();
        expect(rows).toHaveLength(1);
        expect(rows[0]!.private_jwk.split('.')).toHaveLength(5); // a compact JWE, not a JWK
        expect(rows[0]!.private_jwk).not.toContain('"d"');

        const again = await createRotor(config);
        expect((await again.authenticate(grant.accessToken)).user.email).toBe('sealed@example.com');
        await again.close();
        for (const env of [
          { ...config, secret: 'another-secret-that-is-32-characters-long' },
          { ...config, secret: undefined },
        ]) {
          await expect(createRotor(env)).rejects.toMatchObject({
            name: 'ConfigError',
            variable: 'ROTOR_SECRET',
          });
        }
      });
    },
  );

  describe.skipIf(!dialect.available)(`scheduled key rotation [${dialect.name}]`, () => {
    it('ROTOR_KEY_ROTATION rotates the signing key once it is that old', async () => {
      const clock = new ManualClock(Date.now());
      const config = await testConfig(dir, { ROTOR_KEY_ROTATION: '2s' }, dialect.name);
      const app = await createServer(config, { clock, logger: false });
      try {
        const first = app.rotor.keys.current.kid;
        await new Promise((resolve) => setTimeout(resolve, 800));
        expect(app.rotor.keys.current.kid).toBe(first); // not due yet on the (frozen) clock
        clock.advance(2_000);
        await expect
          .poll(() => app.rotor.keys.current.kid, { timeout: 3_000, interval: 100 })
          .not.toBe(first);
        expect(app.rotor.keys.jwks().keys.map((k) => k.kid)).toContain(first); // still published
      } finally {
        await app.close();
      }
    });
  });
}
