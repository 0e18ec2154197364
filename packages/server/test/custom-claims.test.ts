import { afterAll, afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet } from 'jose';
import { createServer, ManualClock, type ClaimsHook } from '@rotor/server';
import { createVerifier, type RotorClaims } from '@rotor/verify';
import { authOf } from '@rotor/verify/fastify';
import { rotorExpress } from '@rotor/verify/express';
import { DIALECTS, tempDir, testConfig } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

interface AppClaims {
  roles: string[];
  tenant: string;
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`custom claims [${dialect.name}]`, () => {
    let app: FastifyInstance;
    afterEach(() => app?.close());
    const start = async (claims: ClaimsHook) => {
      const config = await testConfig(dir, {}, dialect.name);
      app = await createServer(config, {
        clock: new ManualClock(Date.now()),
        logger: false,
        claims,
      });
      return app.rotor.createUser({ email: `c-${Math.random()}@example.com` });
    };
    const signIn = (userId: string) =>
      app.rotor.signIn({ userId, delivery: 'split', ip: null, userAgent: null });
    const verifierOf = () =>
      createVerifier<AppClaims>({
        issuer: app.rotor.config.issuer,
        audience: app.rotor.config.audience,
        jwksUri: 'http://unused.test/jwks',
        keys: createLocalJWKSet(app.rotor.keys.jwks()),
      });

    it('the hook’s claims are in every access token, re-evaluated at each rotation, typed by @rotor/verify', async () => {
      let roles = ['reader'];
      const seen: string[] = [];
      const user = await start(({ user, session }) => {
        seen.push(session.id);
        return { roles, tenant: `t-${user.email.length}` };
      });
      const grant = await signIn(user.id);
      const verifier = verifierOf();
      const first = await verifier.verify(grant.accessToken);
      expect(first.roles).toEqual(['reader']);
      expect(first.sub).toBe(user.id);
      expectTypeOf(first.roles).toEqualTypeOf<string[]>();
      expectTypeOf(first.tenant).toEqualTypeOf<string>();
      expectTypeOf(first).toMatchTypeOf<RotorClaims>();

      roles = ['reader', 'editor'];
      const refreshed = await app.rotor.refresh({
        refreshToken: grant.refreshToken,
        ip: null,
        userAgent: null,
      });
      expect((await verifier.verify(refreshed.accessToken)).roles).toEqual(['reader', 'editor']);
      expect(seen).toEqual([grant.session.id, grant.session.id]);
      // Rotor's own check passes them through too.
      const principal = await app.rotor.authenticate(refreshed.accessToken);
      expect((principal.claims as unknown as AppClaims).roles).toEqual(['reader', 'editor']);
    });

    it('a hook that returns a claim Rotor owns fails loudly, naming it', async () => {
      for (const name of ['sub', 'sid', 'exp', 'iss', 'client_id', 'cnf']) {
        const user = await start(() => ({ [name]: 'x' }));
        await expect(signIn(user.id)).rejects.toThrow(TypeError);
        await expect(signIn(user.id)).rejects.toThrow(`"${name}"`);
        await app.close();
      }
    });

    it('claims over 4 KiB are refused with their size', async () => {
      const user = await start(() => ({ blob: 'x'.repeat(5000) }));
      await expect(signIn(user.id)).rejects.toThrow(RangeError);
      await expect(signIn(user.id)).rejects.toThrow(/5011 bytes.*4096/);
    });
  });
}

describe('@rotor/verify claims typing', () => {
  it('the adapters carry the verifier’s claims type', () => {
    const verifier = createVerifier<AppClaims>({
      issuer: 'https://auth.example.test',
      audience: 'rotor',
      jwksUri: 'https://auth.example.test/jwks',
    });
    type Request = Parameters<ReturnType<typeof rotorExpress<AppClaims>>>[0];
    expectTypeOf(rotorExpress(verifier)).parameter(0).toEqualTypeOf<Request>();
    expectTypeOf<NonNullable<Request['auth']>['tenant']>().toEqualTypeOf<string>();
    expectTypeOf(authOf<AppClaims>).returns.toEqualTypeOf<(RotorClaims & AppClaims) | null>();
    // Without a type argument, the claims are Rotor's own.
    expectTypeOf(createVerifier).returns.toEqualTypeOf<ReturnType<typeof createVerifier>>();
  });
});
