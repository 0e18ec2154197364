import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DIALECTS,
  login,
  registerUser,
  startTestServer,
  tempDir,
  type TestServer,
} from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`[${dialect.name}]`, () => {
    let server: TestServer;
    let email: string;
    let accessToken: string;
    let refreshToken: string;

    beforeAll(async () => {
      server = await startTestServer(dir, {}, dialect.name);
      email = await registerUser(server.app);
      const { body } = await login(server.app, email, 'body');
      accessToken = body.accessToken!;
      refreshToken = body.refreshToken!;
    });
    afterAll(async () => {
      await server.app.close();
    });

    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

    /** A token with the given header and claims and a signature of the right length but no key. */
    function forged(header: object, claims: object, signature = 'A'.repeat(86)): string {
      return `${b64(header)}.${b64(claims)}.${signature}`;
    }

    /** A token signed by a key of the same kind that is not the server's, under the server's kid. */
    async function signedByStranger(
      claims: Record<string, unknown>,
      header: Record<string, unknown> = {},
    ) {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const real = decodeProtectedHeader(accessToken);
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: real.kid, ...header })
        .sign(privateKey);
    }

    describe('bad input never gets a 500', () => {
      const realClaims = () => decodeJwt(accessToken);

      const cases: [string, () => Promise<InjectOptions>, number, string][] = [
        [
          'malformed JSON',
          async () => ({
            method: 'POST',
            url: '/auth/login',
            headers: { 'content-type': 'application/json' },
            payload: '{"email":',
          }),
          400,
          'invalid_request',
        ],
        [
          'JSON that is not an object',
          async () => ({
            method: 'POST',
            url: '/auth/login',
            headers: { 'content-type': 'application/json' },
            payload: '[1,2]',
          }),
          400,
          'invalid_request',
        ],
        [
          'an empty login body',
          async () => ({
            method: 'POST',
            url: '/auth/login',
            headers: { 'content-type': 'application/json' },
            payload: '',
          }),
          400,
          'invalid_request',
        ],
        [
          'a password that is a number',
          async () => ({
            method: 'POST',
            url: '/auth/login',
            payload: { email, password: 12345678 },
          }),
          400,
          'invalid_request',
        ],
        [
          'an email that is an object',
          async () => ({
            method: 'POST',
            url: '/auth/register',
            payload: { email: { $ne: '' }, password: 'long enough' },
          }),
          400,
          'invalid_request',
        ],
        [
          '__proto__ in the body',
          async () => ({
            method: 'POST',
            url: '/auth/login',
            headers: { 'content-type': 'application/json' },
            payload: '{"__proto__":{"admin":true},"email":"a@b.c","password":"x"}',
          }),
          400,
          'invalid_request',
        ],
        [
          'a refresh token that is a number',
          async () => ({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: 42 } }),
          400,
          'invalid_request',
        ],
        [
          'a body over 64 KiB',
          async () => ({
            method: 'POST',
            url: '/auth/register',
            payload: { email, password: 'x'.repeat(70_000) },
          }),
          413,
          'payload_too_large',
        ],
        [
          'a form-encoded body',
          async () => ({
            method: 'POST',
            url: '/auth/login',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            payload: 'email=a&password=b',
          }),
          415,
          'unsupported_media_type',
        ],
        [
          'a text/plain body',
          async () => ({
            method: 'POST',
            url: '/auth/login',
            headers: { 'content-type': 'text/plain' },
            payload: '{}',
          }),
          415,
          'unsupported_media_type',
        ],
        [
          'an unknown Token-Delivery on refresh',
          async () => ({
            method: 'POST',
            url: '/auth/refresh',
            headers: { 'token-delivery': 'both' },
            payload: { refreshToken },
          }),
          400,
          'invalid_request',
        ],
        [
          'an unknown route',
          async () => ({ method: 'GET', url: '/auth/nothing-here' }),
          404,
          'not_found',
        ],
        [
          'a wrong method on a known path',
          async () => ({ method: 'PUT', url: '/auth/login' }),
          405,
          'method_not_allowed',
        ],
        [
          'a malformed URL',
          async () => ({ method: 'GET', url: '/auth/sessions/%E0%A4%A' }),
          400,
          'invalid_request',
        ],
        [
          'a garbage refresh cookie',
          async () => ({
            method: 'POST',
            url: '/auth/refresh',
            headers: { cookie: 'rotor_refresh=%%%\u00ff;;==' },
          }),
          401,
          'invalid_token',
        ],
        [
          'a garbage access cookie',
          async () => ({
            method: 'GET',
            url: '/auth/me',
            headers: { cookie: 'rotor_access=\u0001\u0002"; x' },
          }),
          401,
          'invalid_token',
        ],
        [
          'an unknown refresh token',
          async () => ({
            method: 'POST',
            url: '/auth/refresh',
            payload: { refreshToken: 'Z'.repeat(43) },
          }),
          401,
          'invalid_token',
        ],
        [
          'a refresh token of the wrong shape',
          async () => ({
            method: 'POST',
            url: '/auth/refresh',
            payload: { refreshToken: "' OR 1=1 --" },
          }),
          401,
          'invalid_token',
        ],
        [
          'Authorization with an empty Bearer',
          async () => ({ method: 'GET', url: '/auth/me', headers: { authorization: 'Bearer ' } }),
          401,
          'invalid_token',
        ],
        [
          'a token that is not a JWT',
          async () => ({
            method: 'GET',
            url: '/auth/me',
            headers: { authorization: 'Bearer hello' },
          }),
          401,
          'invalid_token',
        ],
        [
          'alg: none',
          async () => ({
            method: 'GET',
            url: '/auth/me',
            headers: {
              authorization: `Bearer ${forged({ alg: 'none', typ: 'at+jwt', kid: decodeProtectedHeader(accessToken).kid }, realClaims(), '')}`,
            },
          }),
          401,
          'invalid_token',
        ],
        [
          'HS256 with the public key as the secret',
          async () => {
            const jwks = (
              await server.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
            ).json();
            const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
            const token = await new SignJWT(realClaims())
              .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: jwks.keys[0].kid })
              .sign(secret);
            return {
              method: 'GET',
              url: '/auth/me',
              headers: { authorization: `Bearer ${token}` },
            };
          },
          401,
          'invalid_token',
        ],
        [
          'a tampered signature',
          async () => {
            const [h, p, s] = accessToken.split('.');
            const flipped = (s![0] === 'A' ? 'B' : 'A') + s!.slice(1);
            return {
              method: 'GET',
              url: '/auth/me',
              headers: { authorization: `Bearer ${h}.${p}.${flipped}` },
            };
          },
          401,
          'invalid_token',
        ],
        [
          'tampered claims',
          async () => {
            const [h, , s] = accessToken.split('.');
            return {
              method: 'GET',
              url: '/auth/me',
              headers: {
                authorization: `Bearer ${h}.${b64({ ...realClaims(), sub: 'someone-else' })}.${s}`,
              },
            };
          },
          401,
          'invalid_token',
        ],
        [
          'a stranger key under our kid',
          async () => ({
            method: 'GET',
            url: '/auth/me',
            headers: { authorization: `Bearer ${await signedByStranger(realClaims())}` },
          }),
          401,
          'invalid_token',
        ],
        [
          'an unknown kid',
          async () => ({
            method: 'GET',
            url: '/auth/me',
            headers: {
              authorization: `Bearer ${forged({ alg: 'EdDSA', typ: 'at+jwt', kid: '../../etc/passwd' }, realClaims())}`,
            },
          }),
          401,
          'invalid_token',
        ],
        [
          'a token over 8 KiB',
          async () => ({
            method: 'GET',
            url: '/auth/me',
            headers: {
              authorization: `Bearer ${forged({ alg: 'EdDSA' }, { pad: 'x'.repeat(9000) })}`,
            },
          }),
          401,
          'invalid_token',
        ],
        [
          'exp of 1e400',
          async () => ({
            method: 'GET',
            url: '/auth/me',
            headers: {
              authorization: `Bearer ${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: decodeProtectedHeader(accessToken).kid })}.${Buffer.from(JSON.stringify(realClaims()).replace(/"exp":\d+/, '"exp":1e400')).toString('base64url')}.${accessToken.split('.')[2]}`,
            },
          }),
          401,
          'invalid_token',
        ],
      ];

      it.each(cases)('%s → %i %s', async (_label, request, status, code) => {
        const response = await server.app.inject(await request());
        expect(response.statusCode).toBe(status);
        expect(response.headers['content-type']).toMatch(/^application\/json/);
        const body = response.json();
        expect(body.error).toBe(code);
        expect(typeof body.message).toBe('string');
        expect(response.body).not.toMatch(/\bat \S+ \(|node_modules|\.ts:\d+/);
      });

      describe('tokens that are well signed but wrong in a claim', () => {
        // These are signed with the server's own key through a second server that shares its database,
        // so only the claim under test is wrong.
        async function tokenFrom(env: Record<string, string>) {
          const other = await startTestServer(
            dir,
            { ...env, ROTOR_DATABASE_URL: server.config.databaseUrl },
            dialect.name,
            { sqliteServerLock: false },
          );
          other.clock.set(server.clock.now());
          try {
            const { body } = await login(other.app, email, 'body');
            return body.accessToken!;
          } finally {
            await other.app.close();
          }
        }

        it.each([
          ['another issuer', { ROTOR_ISSUER: 'https://evil.example' }],
          ['another audience', { ROTOR_AUDIENCE: 'someone-else' }],
        ])('a token of %s → 401 invalid_token', async (_label, env) => {
          const token = await tokenFrom(env);
          const response = await server.app.inject({
            method: 'GET',
            url: '/auth/me',
            headers: { authorization: `Bearer ${token}` },
          });
          expect(response.statusCode).toBe(401);
          expect(response.json().error).toBe('invalid_token');
        });

        it('an expired token → 401 token_expired', async () => {
          const token = await tokenFrom({ ROTOR_ACCESS_TTL: '1s' });
          server.clock.advance(3_000);
          const response = await server.app.inject({
            method: 'GET',
            url: '/auth/me',
            headers: { authorization: `Bearer ${token}` },
          });
          expect(response.statusCode).toBe(401);
          expect(response.json().error).toBe('token_expired');
        });
      });

      it('a failed request leaves the database as it was', async () => {
        const before = await server.app.rotor.listSessions(
          (await server.app.rotor.store.findUserByEmail(email))!.id,
        );
        for (const payload of [
          { email, password: 'wrong password' },
          { email, password: 42 },
        ]) {
          await server.app.inject({ method: 'POST', url: '/auth/login', payload });
        }
        const after = await server.app.rotor.listSessions(
          (await server.app.rotor.store.findUserByEmail(email))!.id,
        );
        expect(after).toEqual(before);
      });
    });
  });
}
