import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '@rotor/server';
import type { FastifyInstance } from 'fastify';
import { DIALECTS, PASSWORD, tempDir, testConfig } from './helpers.js';
import { freePort } from '@rotor/testkit';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const SECRET = 'notes-api-secret-0123456789';
const REPORTS_SECRET = 'reports-secret-0123456789';
// Rotor on plain HTTP on loopback, so the library must be told that is fine.
const insecure = { [oauth.allowInsecureRequests]: true };

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`OAuth 2.0 with oauth4webapi [${dialect.name}]`, () => {
    let app: FastifyInstance;
    let issuer: URL;
    let as: oauth.AuthorizationServer;
    const mobile: oauth.Client = { client_id: 'mobile' };
    const api: oauth.Client = { client_id: 'notes-api' };
    const reports: oauth.Client = { client_id: 'reports' };

    beforeAll(async () => {
      const port = await freePort();
      const config = await testConfig(
        dir,
        {
          ROTOR_PORT: String(port),
          ROTOR_REFRESH_GRACE: '0',
          ROTOR_OAUTH_CLIENTS: JSON.stringify([
            { id: 'mobile' },
            { id: 'notes-api', secret: SECRET },
            { id: 'reports', secret: REPORTS_SECRET },
          ]),
        },
        dialect.name,
      );
      app = await createServer(config, { logger: false });
      await app.listen({ host: '127.0.0.1', port });
      issuer = new URL(config.issuer);
      await app.rotor.register({ email: 'oauth@example.com', password: PASSWORD });
      // RFC 8414 discovery: the metadata's issuer is exactly ROTOR_ISSUER, as the library checks.
      as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
      );
    });
    afterAll(() => app.close());

    const passwordGrant = async () =>
      oauth.processGenericTokenEndpointResponse(
        as,
        mobile,
        await oauth.genericTokenEndpointRequest(
          as,
          mobile,
          oauth.None(),
          'password',
          { username: 'oauth@example.com', password: PASSWORD },
          insecure,
        ),
      );

    /** A password grant for the confidential client notes-api, authenticated with its secret. */
    const confidentialGrant = async () =>
      oauth.processGenericTokenEndpointResponse(
        as,
        api,
        await oauth.genericTokenEndpointRequest(
          as,
          api,
          oauth.ClientSecretBasic(SECRET),
          'password',
          { username: 'oauth@example.com', password: PASSWORD },
          insecure,
        ),
      );
    const refreshAsApi = async (refreshToken: string) =>
      oauth.processRefreshTokenResponse(
        as,
        api,
        await oauth.refreshTokenGrantRequest(
          as,
          api,
          oauth.ClientSecretBasic(SECRET),
          refreshToken,
          insecure,
        ),
      );
    /** A refresh for the public client mobile (no client authentication). */
    const refreshAsMobile = async (refreshToken: string) =>
      oauth.processRefreshTokenResponse(
        as,
        mobile,
        await oauth.refreshTokenGrantRequest(as, mobile, oauth.None(), refreshToken, insecure),
      );
    const introspectAs = async (client: oauth.Client, secret: string, token: string) =>
      oauth.processIntrospectionResponse(
        as,
        client,
        await oauth.introspectionRequest(
          as,
          client,
          oauth.ClientSecretBasic(secret),
          token,
          insecure,
        ),
      );
    /** Rotor's own JSON endpoints, on the same server. */
    const authPost = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${as.issuer}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });

    it('publishes RFC 8414 metadata', () => {
      expect(as.issuer).toBe(issuer.href.replace(/\/$/, ''));
      expect(as.token_endpoint).toBe(`${as.issuer}/oauth/token`);
      expect(as.grant_types_supported).toEqual(['password', 'refresh_token']);
      expect(as.jwks_uri).toBe(`${as.issuer}/.well-known/jwks.json`);
    });

    it('password grant, then refresh with rotation; the rotated refresh token is then re-use', async () => {
      const first = await passwordGrant();
      expect(first.token_type).toBe('bearer');
      expect(first.expires_in).toBe(900);
      expect(first.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);

      const response = await oauth.refreshTokenGrantRequest(
        as,
        mobile,
        oauth.None(),
        first.refresh_token!,
        insecure,
      );
      expect(response.headers.get('cache-control')).toBe('no-store');
      const second = await oauth.processRefreshTokenResponse(as, mobile, response);
      expect(second.refresh_token).not.toBe(first.refresh_token);

      // Grace window 0 here: the old token again is re-use, answered invalid_grant, session revoked.
      const reuse = await oauth.refreshTokenGrantRequest(
        as,
        mobile,
        oauth.None(),
        first.refresh_token!,
        insecure,
      );
      await expect(oauth.processRefreshTokenResponse(as, mobile, reuse)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
      const after = await oauth.refreshTokenGrantRequest(
        as,
        mobile,
        oauth.None(),
        second.refresh_token!,
        insecure,
      );
      await expect(oauth.processRefreshTokenResponse(as, mobile, after)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
    });

    it('revocation (RFC 7009) ends the session; introspection (RFC 7662) then says active: false', async () => {
      const tokens = await passwordGrant();
      const introspect = async (token: string) =>
        oauth.processIntrospectionResponse(
          as,
          api,
          await oauth.introspectionRequest(
            as,
            api,
            oauth.ClientSecretBasic(SECRET),
            token,
            insecure,
          ),
        );
      const active = await introspect(tokens.access_token);
      expect(active).toMatchObject({
        active: true,
        token_type: 'Bearer',
        client_id: 'mobile',
        iss: as.issuer,
      });
      // The refresh token is mobile's: introspection reports it only to mobile (tested below).
      expect(await introspect(tokens.refresh_token!)).toEqual({ active: false });

      await oauth.processRevocationResponse(
        await oauth.revocationRequest(as, mobile, oauth.None(), tokens.refresh_token!, insecure),
      );
      expect(await introspect(tokens.access_token)).toEqual({ active: false });
      expect(await introspect(tokens.refresh_token!)).toEqual({ active: false });
      // Revoking again, or an unknown token, still succeeds (RFC 7009 §2.2).
      await oauth.processRevocationResponse(
        await oauth.revocationRequest(as, mobile, oauth.None(), 'unknown', insecure),
      );
    });

    it('revoking a rotated refresh token ends the session, as /auth/logout does (issue 15, item 6)', async () => {
      const first = await passwordGrant();
      const second = await refreshAsMobile(first.refresh_token!);
      // The client revokes the token it kept (the first: the answer with the second was lost).
      await oauth.processRevocationResponse(
        await oauth.revocationRequest(as, mobile, oauth.None(), first.refresh_token!, insecure),
      );
      const refreshed = await fetch(as.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: 'mobile',
          refresh_token: second.refresh_token!,
        }),
      });
      expect(refreshed.status).toBe(400);
      expect(((await refreshed.json()) as { error: string }).error).toBe('invalid_grant');
      const me = await fetch(`${as.issuer}/auth/me`, {
        headers: { authorization: `Bearer ${second.access_token}` },
      });
      expect(me.status).toBe(401);
      // Another client's revocation of it still changes nothing (RFC 7009 §2.1).
      const other = await passwordGrant();
      const rotated = await refreshAsMobile(other.refresh_token!);
      await oauth.processRevocationResponse(
        await oauth.revocationRequest(
          as,
          api,
          oauth.ClientSecretBasic(SECRET),
          other.refresh_token!,
          insecure,
        ),
      );
      const still = await fetch(`${as.issuer}/auth/me`, {
        headers: { authorization: `Bearer ${rotated.access_token}` },
      });
      expect(still.status).toBe(200);
    });

    it('errors per RFC 6749 §5.2', async () => {
      const form = (body: Record<string, string>, headers: Record<string, string> = {}) =>
        fetch(as.token_endpoint!, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
          body: new URLSearchParams(body),
        });
      const cases: [Response, number, string][] = [
        [
          await form({
            grant_type: 'password',
            client_id: 'mobile',
            username: 'oauth@example.com',
            password: 'wrong password',
          }),
          400,
          'invalid_grant',
        ],
        [
          await form({ grant_type: 'authorization_code', client_id: 'mobile', code: 'x' }),
          400,
          'unsupported_grant_type',
        ],
        [await form({ client_id: 'mobile' }), 400, 'invalid_request'],
        [
          await form({
            grant_type: 'password',
            client_id: 'mobile',
            username: 'oauth@example.com',
          }),
          400,
          'invalid_request',
        ],
        [
          await form({ grant_type: 'password', client_id: 'nobody', username: 'a', password: 'b' }),
          401,
          'invalid_client',
        ],
        [
          await form(
            { grant_type: 'password', username: 'a', password: 'b' },
            { authorization: `Basic ${btoa('notes-api:wrong')}` },
          ),
          401,
          'invalid_client',
        ],
        [
          await form({
            grant_type: 'refresh_token',
            client_id: 'mobile',
            refresh_token: 'A'.repeat(43),
          }),
          400,
          'invalid_grant',
        ],
      ];
      for (const [response, status, error] of cases) {
        expect(response.status).toBe(status);
        expect(await response.json()).toMatchObject({
          error,
          error_description: expect.any(String),
        });
      }
      const basicFailure = cases[5]![0];
      expect(basicFailure.headers.get('www-authenticate')).toMatch(/^Basic/);
      // A JSON body is refused; a repeated parameter too.
      const json = await fetch(as.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"grant_type":"password"}',
      });
      expect((await json.json()).error).toBe('invalid_request');
      const repeated = await fetch(as.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=password&grant_type=refresh_token&client_id=mobile',
      });
      expect(repeated.status).toBe(400);
      expect((await repeated.json()).error).toBe('invalid_request');
    });

    it('a password grant past the account budget is 429 rate_limited with Retry-After, not invalid_request', async () => {
      const guess = () =>
        fetch(as.token_endpoint!, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'password',
            client_id: 'mobile',
            username: 'limited-oauth@example.com',
            password: 'a wrong guess',
          }),
        });
      const statuses = [];
      for (let i = 0; i < 5; i += 1) statuses.push((await guess()).status);
      expect(statuses).toEqual([400, 400, 400, 400, 400]);
      const refused = await guess();
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await refused.json()) as { error: string }).error).toBe('rate_limited');
    });

    it('a refresh token is bound to its client, and introspection needs a confidential client', async () => {
      const tokens = await passwordGrant();
      const other = await oauth.refreshTokenGrantRequest(
        as,
        api,
        oauth.ClientSecretBasic(SECRET),
        tokens.refresh_token!,
        insecure,
      );
      await expect(oauth.processRefreshTokenResponse(as, api, other)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
      // …and the failed attempt did not rotate or revoke it.
      const own = await oauth.refreshTokenGrantRequest(
        as,
        mobile,
        oauth.None(),
        tokens.refresh_token!,
        insecure,
      );
      expect((await oauth.processRefreshTokenResponse(as, mobile, own)).access_token).toBeTruthy();
      const publicIntrospection = await fetch(as.introspection_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: 'mobile', token: tokens.access_token }),
      });
      expect(publicIntrospection.status).toBe(401);
    });

    it('a refresh token issued through /oauth/token refreshes only there: /auth/refresh is 401 invalid_token and changes nothing', async () => {
      for (const [grant, refreshAtOAuth] of [
        [confidentialGrant, refreshAsApi],
        [passwordGrant, refreshAsMobile],
      ] as const) {
        const tokens = await grant();
        for (const attempt of [
          () => authPost('/auth/refresh', { refreshToken: tokens.refresh_token }),
          () =>
            fetch(`${as.issuer}/auth/refresh`, {
              method: 'POST',
              headers: { cookie: `rotor_refresh=${tokens.refresh_token}` },
            }),
        ]) {
          const response = await attempt();
          expect(response.status).toBe(401);
          expect(((await response.json()) as { error: string }).error).toBe('invalid_token');
        }
        // Not rotated: its client still refreshes it at /oauth/token (with its secret, if it has one).
        expect((await refreshAtOAuth(tokens.refresh_token!)).access_token).toBeTruthy();
      }
    });

    it('/auth/logout does not revoke an OAuth client’s refresh token: only /oauth/revoke does, for its client', async () => {
      const tokens = await confidentialGrant();
      const out = await authPost('/auth/logout', { refreshToken: tokens.refresh_token });
      expect(out.status).toBe(204);
      expect((await refreshAsApi(tokens.refresh_token!)).access_token).toBeTruthy();
    });

    it('introspection reports a refresh token active only to the client it was issued to', async () => {
      const own = await confidentialGrant();
      expect(await introspectAs(api, SECRET, own.refresh_token!)).toMatchObject({
        active: true,
        token_type: 'refresh_token',
        client_id: 'notes-api',
      });
      // Another confidential client, and any client for an /auth-issued or a public client's token.
      expect(await introspectAs(reports, REPORTS_SECRET, own.refresh_token!)).toEqual({
        active: false,
      });
      const login = await authPost(
        '/auth/login',
        { email: 'oauth@example.com', password: PASSWORD },
        { 'token-delivery': 'body' },
      );
      const auth = (await login.json()) as { refreshToken: string; accessToken: string };
      expect(await introspectAs(api, SECRET, auth.refreshToken)).toEqual({ active: false });
      const mobileTokens = await passwordGrant();
      expect(await introspectAs(api, SECRET, mobileTokens.refresh_token!)).toEqual({
        active: false,
      });
      // Nothing was changed by asking: the token still refreshes for its client.
      expect((await refreshAsApi(own.refresh_token!)).access_token).toBeTruthy();
    });

    it('introspection reports a live access token to any confidential client: resource servers ask about the tokens their callers present', async () => {
      const login = await authPost(
        '/auth/login',
        { email: 'oauth@example.com', password: PASSWORD },
        { 'token-delivery': 'body' },
      );
      const auth = (await login.json()) as { accessToken: string };
      const own = await confidentialGrant();
      for (const [client, secret] of [
        [api, SECRET],
        [reports, REPORTS_SECRET],
      ] as const) {
        expect(await introspectAs(client, secret, auth.accessToken)).toMatchObject({
          active: true,
          token_type: 'Bearer',
        });
        expect(await introspectAs(client, secret, own.access_token)).toMatchObject({
          active: true,
          client_id: 'notes-api',
        });
      }
    });
  });
}
