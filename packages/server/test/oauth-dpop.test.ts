import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '@rotor/server';
import type { FastifyInstance } from 'fastify';
import { claimsOf } from './dpop-kit.js';
import { DIALECTS, PASSWORD, tempDir, testConfig } from './helpers.js';
import { freePort } from '@rotor/testkit';

/**
 * Interop (issue 18): oauth4webapi's own DPoP support (`oauth.DPoP(client, keyPair)` passed as the
 * `DPoP` option) against Rotor, unchanged. No proof here is made by hand: the library makes every
 * one, tracks the `DPoP-Nonce` answers, and the nonce retry is exactly its documented pattern
 * (catch `isDPoPNonceError`, retry once; the library's examples/dpop.ts).
 */
const { dir, cleanup } = tempDir();
afterAll(cleanup);
// Rotor on plain HTTP on loopback, so the library must be told that is fine.
const insecure = { [oauth.allowInsecureRequests]: true };

for (const dialect of DIALECTS) {
  for (const nonce of [false, true]) {
    const title = `DPoP with oauth4webapi${nonce ? ', ROTOR_DPOP_NONCE=on' : ''} [${dialect.name}]`;
    describe.skipIf(!dialect.available)(title, () => {
      let app: FastifyInstance;
      let as: oauth.AuthorizationServer;
      let me: URL;
      const mobile: oauth.Client = { client_id: 'mobile' };
      const email = 'dpop-interop@example.com';
      /** How many times the documented nonce retry was taken. */
      let retries = 0;

      beforeAll(async () => {
        const port = await freePort();
        const config = await testConfig(
          dir,
          {
            ROTOR_PORT: String(port),
            ROTOR_OAUTH_CLIENTS: JSON.stringify([{ id: 'mobile' }]),
            ROTOR_DPOP_NONCE: nonce ? 'on' : 'off',
          },
          dialect.name,
        );
        app = await createServer(config, { logger: false });
        await app.listen({ host: '127.0.0.1', port });
        const issuer = new URL(config.issuer);
        await app.rotor.register({ email, password: PASSWORD });
        as = await oauth.processDiscoveryResponse(
          issuer,
          await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
        );
        me = new URL(`${as.issuer}/auth/me`);
      });
      afterAll(() => app.close());

      /** The library's documented nonce handling: on `isDPoPNonceError`, the same request once more. */
      async function withNonceRetry<T>(
        request: () => Promise<Response>,
        process: (response: Response) => Promise<T>,
      ): Promise<T> {
        return process(await request()).catch(async (error: unknown) => {
          if (oauth.isDPoPNonceError(error)) {
            retries += 1;
            return process(await request());
          }
          throw error;
        });
      }

      const passwordGrant = (DPoP: oauth.DPoPHandle) =>
        withNonceRetry(
          () =>
            oauth.genericTokenEndpointRequest(
              as,
              mobile,
              oauth.None(),
              'password',
              { username: email, password: PASSWORD },
              { DPoP, ...insecure },
            ),
          (response) => oauth.processGenericTokenEndpointResponse(as, mobile, response),
        );
      const refreshGrant = (DPoP: oauth.DPoPHandle, refreshToken: string) =>
        withNonceRetry(
          () =>
            oauth.refreshTokenGrantRequest(as, mobile, oauth.None(), refreshToken, {
              DPoP,
              ...insecure,
            }),
          (response) => oauth.processRefreshTokenResponse(as, mobile, response),
        );
      /** GET /auth/me, as the library's example calls a protected resource (the retry included). */
      const getMe = async (DPoP: oauth.DPoPHandle, accessToken: string) => {
        const request = () =>
          oauth.protectedResourceRequest(accessToken, 'GET', me, undefined, undefined, {
            DPoP,
            ...insecure,
          });
        return request().catch((error: unknown) => {
          if (oauth.isDPoPNonceError(error)) {
            retries += 1;
            return request();
          }
          throw error;
        });
      };

      it('advertises its proof algorithms (RFC 9449 §5.1)', () => {
        expect(as.dpop_signing_alg_values_supported).toContain('ES256');
      });

      it('password grant, refresh and GET /auth/me, all by oauth4webapi’s DPoP handle', async () => {
        retries = 0;
        const keyPair = await oauth.generateKeyPair('ES256');
        const DPoP = oauth.DPoP(mobile, keyPair);
        const jkt = await DPoP.calculateThumbprint();

        const first = await passwordGrant(DPoP);
        // The library lowercases token_type; Rotor answers "DPoP" (RFC 9449 §5).
        expect(first.token_type).toBe('dpop');
        expect(claimsOf(first.access_token).cnf).toEqual({ jkt });
        // With nonces the first proof has none: one use_dpop_nonce, then the library's retry.
        expect(retries).toBe(nonce ? 1 : 0);

        const meResponse = await getMe(DPoP, first.access_token);
        expect(meResponse.status).toBe(200);
        expect(await meResponse.json()).toMatchObject({
          user: { email },
          session: { dpopBound: true },
        });

        const second = await refreshGrant(DPoP, first.refresh_token!);
        expect(second.token_type).toBe('dpop');
        expect(second.refresh_token).not.toBe(first.refresh_token);
        expect(claimsOf(second.access_token).cnf).toEqual({ jkt });
        const again = await getMe(DPoP, second.access_token);
        expect(again.status).toBe(200);
        // The handle kept the nonce it was given: no further retry was needed.
        expect(retries).toBe(nonce ? 1 : 0);
      });

      it('a new handle for the same key (no nonce cached) refreshes and calls /auth/me through the retry', async () => {
        const keyPair = await oauth.generateKeyPair('ES256');
        const tokens = await passwordGrant(oauth.DPoP(mobile, keyPair));
        retries = 0;
        // Another handle (an app restarted with its stored key): it knows no nonce yet.
        const refreshed = await refreshGrant(oauth.DPoP(mobile, keyPair), tokens.refresh_token!);
        expect(refreshed.token_type).toBe('dpop');
        expect(retries).toBe(nonce ? 1 : 0);
        // And a resource request by yet another handle: the 401 use_dpop_nonce challenge path.
        const response = await getMe(oauth.DPoP(mobile, keyPair), refreshed.access_token);
        expect(response.status).toBe(200);
        expect(retries).toBe(nonce ? 2 : 0);
      });

      it('the bound access token sent by oauth4webapi as plain Bearer is refused with a DPoP challenge', async () => {
        const DPoP = oauth.DPoP(mobile, await oauth.generateKeyPair('ES256'));
        const tokens = await passwordGrant(DPoP);
        // No DPoP option: the library sends "Authorization: Bearer <token>" and no proof.
        const refused = await oauth
          .protectedResourceRequest(tokens.access_token, 'GET', me, undefined, undefined, insecure)
          .then(
            () => undefined,
            (error: unknown) => error,
          );
        expect(refused).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
        const challenge = refused as oauth.WWWAuthenticateChallengeError;
        expect(challenge.status).toBe(401);
        expect(challenge.cause).toEqual([
          expect.objectContaining({
            scheme: 'dpop',
            parameters: expect.objectContaining({ error: 'invalid_token' }),
          }),
        ]);
        expect(oauth.isDPoPNonceError(refused)).toBe(false);
        // The same token with its proof still works: the refusal changed nothing.
        expect((await getMe(DPoP, tokens.access_token)).status).toBe(200);
      });

      it('a refresh by a handle with another key is refused; the session’s own key still refreshes', async () => {
        const keyPair = await oauth.generateKeyPair('ES256');
        const DPoP = oauth.DPoP(mobile, keyPair);
        const tokens = await passwordGrant(DPoP);
        const thief = oauth.DPoP(mobile, await oauth.generateKeyPair('ES256'));
        // A dead or foreign refresh token is invalid_grant at /oauth/token (docs/oauth.md).
        await expect(refreshGrant(thief, tokens.refresh_token!)).rejects.toMatchObject({
          error: 'invalid_grant',
          status: 400,
        });
        // Without any proof: the library's plain refresh.
        await expect(
          oauth.processRefreshTokenResponse(
            as,
            mobile,
            await oauth.refreshTokenGrantRequest(
              as,
              mobile,
              oauth.None(),
              tokens.refresh_token!,
              insecure,
            ),
          ),
        ).rejects.toMatchObject({ error: 'invalid_dpop_proof' });
        const own = await refreshGrant(DPoP, tokens.refresh_token!);
        expect(claimsOf(own.access_token).cnf).toEqual({ jkt: await DPoP.calculateThumbprint() });
      });
    });
  }
}
