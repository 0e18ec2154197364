import type { FastifyInstance } from 'fastify';
import { base64url, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claimsOf, dpopKey, type DpopTestKey } from '../dpop-kit.js';
import {
  DIALECTS,
  PASSWORD,
  registerUser,
  startTestServer,
  tempDir,
  type TestServer,
} from '../helpers.js';
import { startRotorPair, type RotorProcess } from '../rotor-process.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

type Tokens = { tokenType: string; accessToken: string; refreshToken: string; sessionId: string };

/**
 * Issue 18: sender-constrained sessions (DPoP, RFC 9449). Every test plays the attacker: a proof
 * made by `jose` by hand for each hostile case, a stolen token without the key, a replayed proof
 * over many sockets at once against two instances of one database.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`DPoP-bound sessions [${dialect.name}]`, () => {
    let server: TestServer;
    let app: FastifyInstance;
    let issuer: string;
    const now = () => Math.floor(server.clock.now() / 1000);

    async function start(env: Record<string, string> = {}) {
      server = await startTestServer(dir, { ROTOR_RATE_LIMIT: 'off', ...env }, dialect.name);
      app = server.app;
      issuer = server.config.issuer;
    }
    beforeEach(() => start());
    afterEach(() => app.close());

    const keyOf = (alg = 'ES256') => dpopKey(alg, now);

    async function signIn(key?: DpopTestKey, email?: string) {
      const address = email ?? (await registerUser(app));
      const response = await app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: {
          'token-delivery': 'body',
          ...(key && { dpop: await key.proof('POST', `${issuer}/auth/login`) }),
        },
        payload: { email: address, password: PASSWORD },
      });
      expect(response.statusCode, response.body).toBe(200);
      return response.json() as Tokens;
    }

    async function refresh(refreshToken: string, proof?: string | string[]) {
      return app.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { 'token-delivery': 'body', ...(proof !== undefined && { dpop: proof }) },
        payload: { refreshToken },
      });
    }
    const refreshProof = (key: DpopTestKey, options?: Parameters<DpopTestKey['proof']>[2]) =>
      key.proof('POST', `${issuer}/auth/refresh`, options);

    async function me(accessToken: string, scheme: string, proof?: string) {
      return app.inject({
        method: 'GET',
        url: '/auth/me',
        headers: {
          authorization: `${scheme} ${accessToken}`,
          ...(proof !== undefined && { dpop: proof }),
        },
      });
    }
    const meProof = (key: DpopTestKey, accessToken: string) =>
      key.proof('GET', `${issuer}/auth/me`, { accessToken });

    async function events(key: DpopTestKey, accessToken: string) {
      const response = await app.inject({
        method: 'GET',
        url: '/auth/events',
        headers: {
          authorization: `DPoP ${accessToken}`,
          dpop: await key.proof('GET', `${issuer}/auth/events`, { accessToken }),
        },
      });
      expect(response.statusCode, response.body).toBe(200);
      return (response.json().events as { type: string }[]).map((e) => e.type);
    }

    it('a login with a proof binds the session: DPoP tokens with cnf.jkt, dpopBound, and every refresh stays bound', async () => {
      const key = await keyOf();
      const tokens = await signIn(key);
      expect(tokens.tokenType).toBe('DPoP');
      expect(claimsOf(tokens.accessToken).cnf).toEqual({ jkt: key.jkt });
      const sessions = await app.inject({
        method: 'GET',
        url: '/auth/sessions',
        headers: {
          authorization: `DPoP ${tokens.accessToken}`,
          dpop: await key.proof('GET', `${issuer}/auth/sessions`, {
            accessToken: tokens.accessToken,
          }),
        },
      });
      expect(sessions.statusCode, sessions.body).toBe(200);
      expect(sessions.json().sessions[0].dpopBound).toBe(true);
      const next = await refresh(tokens.refreshToken, await refreshProof(key));
      expect(next.statusCode, next.body).toBe(200);
      expect(next.json().tokenType).toBe('DPoP');
      expect(claimsOf(next.json().accessToken).cnf).toEqual({ jkt: key.jkt });
    });

    it('a stolen bound access token is refused as Bearer, in a cookie, and with a proof by another key', async () => {
      const key = await keyOf();
      const thief = await keyOf();
      const { accessToken } = await signIn(key);
      const asBearer = await me(accessToken, 'Bearer');
      expect(asBearer.statusCode).toBe(401);
      expect(asBearer.json().error).toBe('invalid_token');
      expect(asBearer.headers['www-authenticate']).toMatch(/^DPoP error="invalid_token", algs="/);
      const inCookie = await app.inject({
        method: 'GET',
        url: '/auth/me',
        cookies: { rotor_access: accessToken },
        headers: { origin: issuer },
      });
      expect(inCookie.statusCode).toBe(401);
      const noProof = await me(accessToken, 'DPoP');
      expect(noProof.statusCode).toBe(401);
      expect(noProof.json().error).toBe('invalid_dpop_proof');
      const otherKey = await me(accessToken, 'DPoP', await meProof(thief, accessToken));
      expect(otherKey.statusCode).toBe(401);
      expect(otherKey.json().error).toBe('invalid_dpop_proof');
      // The owner, with the key, is served.
      const owner = await me(accessToken, 'DPoP', await meProof(key, accessToken));
      expect(owner.statusCode, owner.body).toBe(200);
    });

    it('a Bearer token sent with the DPoP scheme is refused', async () => {
      const key = await keyOf();
      const { accessToken } = await signIn();
      const response = await me(accessToken, 'DPoP', await meProof(key, accessToken));
      expect(response.statusCode).toBe(401);
      expect(response.json().error).toBe('invalid_token');
      expect((await me(accessToken, 'Bearer')).statusCode).toBe(200);
    });

    it('hostile proofs are refused on refresh and on a protected route, and the owner goes on', async () => {
      const key = await keyOf();
      const stranger = await keyOf();
      const tokens = await signIn(key);
      const url = `${issuer}/auth/refresh`;
      const hmacKey = new Uint8Array(32).fill(7);
      const { privateKey: rsaPrivate, publicKey: rsaPublic } = await generateKeyPair('RS256', {
        extractable: true,
      });
      const unsigned = (header: object, claims: object) =>
        `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(claims))}.`;
      const claims = () => ({ htm: 'POST', htu: url, iat: now(), jti: crypto.randomUUID() });
      const hostile: [string, () => Promise<string>][] = [
        ['another method', () => key.proof('GET', url)],
        ['another URL', () => key.proof('POST', `${issuer}/auth/logout`)],
        ['another host', () => key.proof('POST', 'https://evil.example/auth/refresh')],
        ['an old iat', () => key.proof('POST', url, { iat: now() - 120 })],
        ['an iat in the future', () => key.proof('POST', url, { iat: now() + 60 })],
        ['no jti', () => key.proof('POST', url, { claims: { jti: undefined } })],
        ['typ JWT', () => key.proof('POST', url, { header: { typ: 'JWT' } })],
        ['no jwk', () => key.proof('POST', url, { header: { jwk: undefined } })],
        ['a private key in jwk', () => key.proof('POST', url, { header: { jwk: key.privateJwk } })],
        [
          'signed by another key than its jwk',
          () => key.proof('POST', url, { signWith: stranger.privateKey }),
        ],
        [
          'alg none',
          async () => unsigned({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk }, claims()),
        ],
        [
          'HS256 with a symmetric jwk',
          () =>
            new SignJWT(claims())
              .setProtectedHeader({
                alg: 'HS256',
                typ: 'dpop+jwt',
                // jose's types refuse a symmetric jwk here; an attacker's proof has one anyway.
                jwk: { kty: 'oct', k: base64url.encode(hmacKey) } as never,
              })
              .sign(hmacKey),
        ],
        [
          'an alg its key does not have',
          async () =>
            new SignJWT(claims())
              .setProtectedHeader({
                alg: 'RS256',
                typ: 'dpop+jwt',
                jwk: await exportJWK(rsaPublic),
              })
              .sign(rsaPrivate)
              .then((proof) => {
                const [, payload, signature] = proof.split('.');
                const header = base64url.encode(
                  JSON.stringify({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk }),
                );
                return `${header}.${payload}.${signature}`;
              }),
        ],
        ['not a JWS', async () => 'not.a.proof'],
        ['too long', () => key.proof('POST', url, { claims: { pad: 'x'.repeat(5000) } })],
      ];
      for (const [name, make] of hostile) {
        const response = await refresh(tokens.refreshToken, await make());
        expect(response.statusCode, name).toBe(401);
        expect(response.json().error, name).toBe('invalid_dpop_proof');
        expect(response.headers['www-authenticate'], name).toMatch(
          /^DPoP error="invalid_dpop_proof"/,
        );
      }
      // Two DPoP headers (RFC 9449 §4.3 step 1: exactly one).
      const twice = await refresh(tokens.refreshToken, [
        await refreshProof(key),
        await refreshProof(key),
      ]);
      expect(twice.statusCode).toBe(401);
      expect(twice.json().error).toBe('invalid_dpop_proof');
      // A proof used once is never accepted again: on the protected route, with the right ath.
      const proof = await meProof(key, tokens.accessToken);
      expect((await me(tokens.accessToken, 'DPoP', proof)).statusCode).toBe(200);
      const replay = await me(tokens.accessToken, 'DPoP', proof);
      expect(replay.statusCode).toBe(401);
      expect(replay.json().error).toBe('invalid_dpop_proof');
      // A proof for another access token (ath).
      const otherAth = await key.proof('GET', `${issuer}/auth/me`, { accessToken: 'x.y.z' });
      expect((await me(tokens.accessToken, 'DPoP', otherAth)).json().error).toBe(
        'invalid_dpop_proof',
      );
      // None of it touched the session: the owner refreshes with a good proof.
      const owner = await refresh(tokens.refreshToken, await refreshProof(key));
      expect(owner.statusCode, owner.body).toBe(200);
    });

    it('a stolen refresh token without the key gets nothing, is audited, and does not end the session', async () => {
      const key = await keyOf();
      const thief = await keyOf();
      const tokens = await signIn(key);
      const noProof = await refresh(tokens.refreshToken);
      expect(noProof.statusCode).toBe(401);
      expect(noProof.json().error).toBe('invalid_dpop_proof');
      const ownKey = await refresh(tokens.refreshToken, await refreshProof(thief));
      expect(ownKey.statusCode).toBe(401);
      expect(ownKey.json().error).toBe('invalid_token');
      const owner = await refresh(tokens.refreshToken, await refreshProof(key));
      expect(owner.statusCode, owner.body).toBe(200);
      const { accessToken } = owner.json() as Tokens;
      expect(await events(key, accessToken)).toEqual([
        'dpop_key_mismatch',
        'dpop_key_mismatch',
        'login_succeeded',
      ]);
    });

    it('a thief replaying a rotated token inside the grace window gets nothing and revokes nothing', async () => {
      const key = await keyOf();
      const thief = await keyOf();
      const first = await signIn(key);
      const rotated = await refresh(first.refreshToken, await refreshProof(key));
      expect(rotated.statusCode).toBe(200);
      const second = rotated.json() as Tokens;
      // Inside the window an unbound session hands the racer the live successor; this one does not.
      for (const proof of [undefined, await refreshProof(thief)]) {
        const replay = await refresh(first.refreshToken, proof);
        expect(replay.statusCode).toBe(401);
        expect(replay.json()).not.toHaveProperty('refreshToken');
      }
      server.clock.advance(60 * 60_000);
      // After the window too: no revocation by a keyless replay.
      const late = await refresh(first.refreshToken, await refreshProof(thief));
      expect(late.statusCode).toBe(401);
      expect(late.json().error).toBe('invalid_token');
      const owner = await refresh(second.refreshToken, await refreshProof(key));
      expect(owner.statusCode, owner.body).toBe(200);
    });

    it('a thief with copies of both tokens cannot sign the owner out; the owner can, with the key', async () => {
      const key = await keyOf();
      const thief = await keyOf();
      const tokens = await signIn(key);
      const logout = async (headers: Record<string, string>) =>
        app.inject({
          method: 'POST',
          url: '/auth/logout',
          headers: { 'token-delivery': 'body', ...headers },
          payload: { refreshToken: tokens.refreshToken },
        });
      const logoutProof = (k: DpopTestKey) => k.proof('POST', `${issuer}/auth/logout`);
      // Logout stays idempotent (204), but ends nothing without the key's proof.
      expect((await logout({})).statusCode).toBe(204);
      expect((await logout({ dpop: await logoutProof(thief) })).statusCode).toBe(204);
      expect((await logout({ authorization: `Bearer ${tokens.accessToken}` })).statusCode).toBe(
        204,
      );
      const alive = await me(tokens.accessToken, 'DPoP', await meProof(key, tokens.accessToken));
      expect(alive.statusCode, alive.body).toBe(200);
      expect((await logout({ dpop: await logoutProof(key) })).statusCode).toBe(204);
      const ended = await me(tokens.accessToken, 'DPoP', await meProof(key, tokens.accessToken));
      expect(ended.json().error).toBe('session_revoked');
    });

    it('a retry is not a theft: the same token with the same key an hour later gets the same unused successor', async () => {
      const key = await keyOf();
      const first = await signIn(key);
      const lost = await refresh(first.refreshToken, await refreshProof(key));
      expect(lost.statusCode).toBe(200);
      const successor = (lost.json() as Tokens).refreshToken;
      server.clock.advance(60 * 60_000);
      const retry = await refresh(first.refreshToken, await refreshProof(key));
      expect(retry.statusCode, retry.body).toBe(200);
      expect((retry.json() as Tokens).refreshToken).toBe(successor);
      expect(claimsOf((retry.json() as Tokens).accessToken).cnf).toEqual({ jkt: key.jkt });
      const next = await refresh(successor, await refreshProof(key));
      expect(next.statusCode, next.body).toBe(200);
      // Once the successor was used, the old token is re-use again, as for every session.
      const reuse = await refresh(first.refreshToken, await refreshProof(key));
      expect(reuse.json().error).toBe('refresh_token_reused');
    });

    it('an unbound session is the same rotation as before: a late replay revokes it', async () => {
      const first = await signIn();
      expect(first.tokenType).toBe('Bearer');
      const rotated = await refresh(first.refreshToken);
      expect(rotated.statusCode).toBe(200);
      server.clock.advance(60 * 60_000);
      expect((await refresh(first.refreshToken)).json().error).toBe('refresh_token_reused');
    });

    it('a proof at refresh does not bind a session that signed in without one', async () => {
      const key = await keyOf();
      const first = await signIn();
      const next = await refresh(first.refreshToken, await refreshProof(key));
      expect(next.statusCode, next.body).toBe(200);
      expect(next.json().tokenType).toBe('Bearer');
      expect(claimsOf(next.json().accessToken)).not.toHaveProperty('cnf');
      expect((await refresh(next.json().refreshToken)).statusCode).toBe(200);
    });

    it('ROTOR_DPOP=required refuses a login and a refresh without a proof; off ignores proofs', async () => {
      await app.close();
      await start({ ROTOR_DPOP: 'required' });
      const email = await registerUser(app);
      const without = await app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { 'token-delivery': 'body' },
        payload: { email, password: PASSWORD },
      });
      expect(without.statusCode).toBe(401);
      expect(without.json().error).toBe('invalid_dpop_proof');
      const key = await keyOf();
      const tokens = await signIn(key, email);
      expect(tokens.tokenType).toBe('DPoP');
      expect((await refresh(tokens.refreshToken)).json().error).toBe('invalid_dpop_proof');
      await app.close();
      await start({ ROTOR_DPOP: 'off' });
      const plain = await signIn(key);
      expect(plain.tokenType).toBe('Bearer');
      expect(claimsOf(plain.accessToken)).not.toHaveProperty('cnf');
    });

    it('ROTOR_DPOP_NONCE: a proof without the server nonce is use_dpop_nonce with a DPoP-Nonce to retry with', async () => {
      await app.close();
      await start({ ROTOR_DPOP_NONCE: 'on' });
      const key = await keyOf();
      const email = await registerUser(app);
      const login = (proof: string) =>
        app.inject({
          method: 'POST',
          url: '/auth/login',
          headers: { 'token-delivery': 'body', dpop: proof },
          payload: { email, password: PASSWORD },
        });
      const first = await login(await key.proof('POST', `${issuer}/auth/login`));
      expect(first.statusCode).toBe(401);
      expect(first.json().error).toBe('use_dpop_nonce');
      expect(first.headers['www-authenticate']).toMatch(/^DPoP error="use_dpop_nonce"/);
      const nonce = first.headers['dpop-nonce'] as string;
      expect(nonce).toMatch(/^[\w-]{20,}$/);
      const forged = await login(
        await key.proof('POST', `${issuer}/auth/login`, { nonce: 'x'.repeat(32) }),
      );
      expect(forged.json().error).toBe('use_dpop_nonce');
      const second = await login(await key.proof('POST', `${issuer}/auth/login`, { nonce }));
      expect(second.statusCode, second.body).toBe(200);
      expect(second.json().tokenType).toBe('DPoP');
      // Accepted for its slot and the next, then refused.
      server.clock.advance(11 * 60_000);
      const stale = await refresh(second.json().refreshToken, await refreshProof(key, { nonce }));
      expect(stale.json().error).toBe('use_dpop_nonce');
    });

    it('the OAuth token endpoint binds at the password grant and needs the key at the refresh grant', async () => {
      await app.close();
      await start({ ROTOR_OAUTH_CLIENTS: JSON.stringify([{ id: 'mobile' }]) });
      const key = await keyOf();
      const thief = await keyOf();
      const email = await registerUser(app);
      const token = async (form: Record<string, string>, proof?: string) =>
        app.inject({
          method: 'POST',
          url: '/oauth/token',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            ...(proof !== undefined && { dpop: proof }),
          },
          payload: new URLSearchParams({ client_id: 'mobile', ...form }).toString(),
        });
      const tokenProof = (k: DpopTestKey) => k.proof('POST', `${issuer}/oauth/token`);
      const granted = await token(
        { grant_type: 'password', username: email, password: PASSWORD },
        await tokenProof(key),
      );
      expect(granted.statusCode, granted.body).toBe(200);
      expect(granted.json().token_type).toBe('DPoP');
      expect(claimsOf(granted.json().access_token).cnf).toEqual({ jkt: key.jkt });
      const refreshToken = granted.json().refresh_token as string;
      const without = await token({ grant_type: 'refresh_token', refresh_token: refreshToken });
      expect(without.statusCode).toBe(400);
      expect(without.json().error).toBe('invalid_dpop_proof');
      const stolen = await token(
        { grant_type: 'refresh_token', refresh_token: refreshToken },
        await tokenProof(thief),
      );
      expect(stolen.statusCode).toBe(400);
      expect(stolen.json().error).toBe('invalid_grant');
      const owner = await token(
        { grant_type: 'refresh_token', refresh_token: refreshToken },
        await tokenProof(key),
      );
      expect(owner.statusCode, owner.body).toBe(200);
      expect(owner.json().token_type).toBe('DPoP');
      // RFC 7009 revocation of the bound session: nothing without a proof by its key.
      const next = owner.json().refresh_token as string;
      const revoke = async (proof?: string) =>
        app.inject({
          method: 'POST',
          url: '/oauth/revoke',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            ...(proof !== undefined && { dpop: proof }),
          },
          payload: new URLSearchParams({ client_id: 'mobile', token: next }).toString(),
        });
      const revokeProof = (k: DpopTestKey) => k.proof('POST', `${issuer}/oauth/revoke`);
      expect((await revoke()).statusCode).toBe(200);
      expect((await revoke(await revokeProof(thief))).statusCode).toBe(200);
      const still = await token(
        { grant_type: 'refresh_token', refresh_token: next },
        await tokenProof(key),
      );
      expect(still.statusCode, still.body).toBe(200);
      const last = still.json().refresh_token as string;
      const revokedByOwner = await app.inject({
        method: 'POST',
        url: '/oauth/revoke',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          dpop: await revokeProof(key),
        },
        payload: new URLSearchParams({ client_id: 'mobile', token: last }).toString(),
      });
      expect(revokedByOwner.statusCode).toBe(200);
      const after = await token(
        { grant_type: 'refresh_token', refresh_token: last },
        await tokenProof(key),
      );
      expect(after.json().error).toBe('invalid_grant');
      const metadata = await app.inject({ url: '/.well-known/oauth-authorization-server' });
      expect(metadata.json().dpop_signing_alg_values_supported).toContain('ES256');
    });
  });

  describe.skipIf(!dialect.available)(`DPoP proofs replayed at once [${dialect.name}]`, () => {
    let instances: RotorProcess[] = [];
    const issuer = 'https://auth.example.test';
    afterAll(async () => {
      await Promise.all(instances.map((instance) => instance.stop()));
    });

    it('one proof sent 50 times at once over as many sockets, to both instances, is accepted once', async () => {
      const { newDatabaseUrl } = await import('../helpers.js');
      instances = await startRotorPair({
        ROTOR_DATABASE_URL: await newDatabaseUrl(dialect.name, dir),
        ROTOR_RATE_LIMIT: 'off',
      });
      const key = await dpopKey();
      const email = `replay-${dialect.name}@example.com`;
      const post = (i: number, path: string, body: unknown, dpop?: string) =>
        fetch(`${instances[i % 2]!.url}${path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'token-delivery': 'body',
            ...(dpop && { dpop }),
          },
          body: JSON.stringify(body),
        });
      expect((await post(0, '/auth/register', { email, password: PASSWORD })).status).toBe(201);
      const login = await post(
        1,
        '/auth/login',
        { email, password: PASSWORD },
        await key.proof('POST', `${issuer}/auth/login`),
      );
      expect(login.status).toBe(200);
      const tokens = (await login.json()) as Tokens;
      const proof = await key.proof('GET', `${issuer}/auth/me`, {
        accessToken: tokens.accessToken,
      });
      const statuses = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          fetch(`${instances[i % 2]!.url}/auth/me`, {
            headers: { authorization: `DPoP ${tokens.accessToken}`, dpop: proof },
          }).then((r) => r.status),
        ),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 401)).toHaveLength(49);
      // A refresh proof raced the same way: one rotation, no revocation by the losers.
      const refreshProof = await key.proof('POST', `${issuer}/auth/refresh`);
      const refreshes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          post(i, '/auth/refresh', { refreshToken: tokens.refreshToken }, refreshProof).then(
            async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }),
          ),
        ),
      );
      expect(refreshes.filter((r) => r.status === 200)).toHaveLength(1);
      expect(refreshes.filter((r) => r.body.error === 'invalid_dpop_proof')).toHaveLength(19);
      const winner = refreshes.find((r) => r.status === 200)!.body as unknown as Tokens;
      const next = await post(
        1,
        '/auth/refresh',
        { refreshToken: winner.refreshToken },
        await key.proof('POST', `${issuer}/auth/refresh`),
      );
      expect(next.status).toBe(200);
    });
  });
}
