import express from 'express';
import { Hono } from 'hono';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createVerifier,
  tokenOf,
  VerifyError,
  type RotorClaims,
  type Verifier,
} from '@rotor/verify';
import { rotorExpress } from '@rotor/verify/express';
import { rotorHono } from '@rotor/verify/hono';

const ISSUER = 'https://auth.example.test';
let privateKey: CryptoKey;
let verifier: Verifier;
let keysForTest: ReturnType<typeof createLocalJWKSet>;

beforeAll(async () => {
  const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'EdDSA' };
  keysForTest = createLocalJWKSet({ keys: [jwk] });
  verifier = createVerifier({
    issuer: ISSUER,
    audience: 'rotor',
    jwksUri: `${ISSUER}/jwks`,
    keys: keysForTest,
  });
});

/** A token as Rotor signs it, with any claim or header overridden. */
function token(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: 'session-1', jti: 'j1', ...claims })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k1', ...header })
    .setIssuer((claims.iss as string | undefined) ?? ISSUER)
    .setAudience((claims.aud as string | undefined) ?? 'rotor')
    .setSubject('user-1')
    .setIssuedAt(now)
    .setExpirationTime((claims.exp as number | undefined) ?? now + 900)
    .sign(privateKey);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    return error instanceof VerifyError ? error.code : String(error);
  }
}

describe('createVerifier', () => {
  it('returns the typed claims of a valid token', async () => {
    const claims: RotorClaims = await verifier.verify(await token());
    expect(claims).toMatchObject({ sub: 'user-1', sid: 'session-1', iss: ISSUER, aud: 'rotor' });
  });

  it.each([
    ['expired', async () => token({ exp: Math.floor(Date.now() / 1000) - 5 }), 'token_expired'],
    ['of another audience', async () => token({ aud: 'other' }), 'invalid_token'],
    ['of another issuer', async () => token({ iss: 'https://evil.example' }), 'invalid_token'],
    ['with the wrong typ', async () => token({}, { typ: 'JWT' }), 'invalid_token'],
    ['without a session id', async () => token({ sid: undefined }), 'invalid_token'],
    [
      'with alg none',
      async () =>
        `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${(await token()).split('.')[1]}.`,
      'invalid_token',
    ],
    ['over 8 KiB', async () => 'x'.repeat(9000), 'invalid_token'],
    ['empty', async () => '', 'missing_token'],
  ])('refuses a token %s', async (_label, make, code) => {
    expect(await codeOf(verifier.verify(await make()))).toBe(code);
  });

  it('remembers verified tokens only until they expire, and never a token that failed', async () => {
    const cached = createVerifier({
      issuer: ISSUER,
      audience: 'rotor',
      jwksUri: `${ISSUER}/jwks`,
      keys: keysForTest,
      cacheSize: 2,
    });
    const now = Math.floor(Date.now() / 1000);
    const short = await token({ exp: now + 2 });
    expect((await cached.verify(short)).sub).toBe('user-1');
    expect((await cached.verify(short)).sub).toBe('user-1'); // from the cache
    const tampered = `${short.slice(0, -3)}AAA`;
    expect(await codeOf(cached.verify(tampered))).toBe('invalid_token');
    await new Promise((resolve) => setTimeout(resolve, 3_100)); // past exp and the 1 s leeway
    expect(await codeOf(cached.verify(short))).toBe('token_expired');
  });

  it('finds the token in the Authorization header first, then the rotor_access cookie', () => {
    expect(tokenOf({ authorization: 'Bearer abc', cookie: 'rotor_access=def' })).toBe('abc');
    expect(tokenOf({ cookie: 'theme=dark; rotor_access=def' })).toBe('def');
    expect(tokenOf({ authorization: 'Basic xyz' })).toBeUndefined();
  });
});

describe('framework adapters answer 401 with WWW-Authenticate and the JSON shape', () => {
  let server: ReturnType<ReturnType<typeof express>['listen']>;
  let expressUrl: string;
  const hono = new Hono<{ Variables: { auth: RotorClaims } }>();

  beforeAll(async () => {
    const app = express();
    app.get('/me', rotorExpress(verifier), (request, response) => {
      response.json({ sub: (request as unknown as { auth: RotorClaims }).auth.sub });
    });
    await new Promise<void>((resolve) => {
      server = app.listen(0, '127.0.0.1', () => resolve());
    });
    expressUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    hono.use('/me', rotorHono(verifier));
    hono.get('/me', (c) => c.json({ sub: c.get('auth').sub }));
  });
  afterAll(() => server?.close());

  const adapters: [string, (headers: Record<string, string>) => Promise<Response>][] = [
    ['express', (headers) => fetch(`${expressUrl}/me`, { headers })],
    ['hono', async (headers) => hono.request('/me', { headers })],
  ];

  it.each(adapters)('%s', async (_name, get) => {
    const ok = await get({ authorization: `Bearer ${await token()}` });
    expect([ok.status, await ok.json()]).toEqual([200, { sub: 'user-1' }]);
    const missing = await get({});
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect(await missing.json()).toMatchObject({ error: 'missing_token' });
    const expired = await get({ authorization: `Bearer ${await token({ exp: 1 })}` });
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(await expired.json()).toMatchObject({ error: 'token_expired' });
    const viaCookie = await get({ cookie: `rotor_access=${await token()}` });
    expect(viaCookie.status).toBe(200);
  });
});

describe('a key that leaves the JWKS (retired at once, for a leak)', () => {
  it('is noticed at the next fetch of the set: its tokens are refused, cached ones too, and the other key keeps working', async () => {
    const { createServer } = await import('node:http');
    const pairs = await Promise.all([1, 2].map(() => generateKeyPair('EdDSA', { crv: 'Ed25519' })));
    const jwks = await Promise.all(
      pairs.map(async (pair, i) => ({
        ...(await exportJWK(pair.publicKey)),
        kid: `key-${i}`,
        alg: 'EdDSA',
      })),
    );
    let published = jwks;
    let fetches = 0;
    const server = createServer((_request, response) => {
      fetches += 1;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const remote = createVerifier({
        issuer: ISSUER,
        audience: 'rotor',
        jwksUri: `http://127.0.0.1:${port}/jwks`,
        jwksMaxAgeMs: 300,
        jwksCooldownMs: 0,
      });
      const signed = (i: number) =>
        new SignJWT({ sid: `session-${i}`, jti: `j-${i}` })
          .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: `key-${i}` })
          .setIssuer(ISSUER)
          .setAudience('rotor')
          .setSubject('user-1')
          .setIssuedAt()
          .setExpirationTime('15m')
          .sign(pairs[i]!.privateKey);
      const [leaked, kept] = [await signed(0), await signed(1)];
      expect((await remote.verify(leaked)).sid).toBe('session-0');
      expect((await remote.verify(kept)).sid).toBe('session-1');
      expect(await codeOf(remote.verify(leaked))).toBe('ok'); // answered from the cache

      published = [jwks[1]!];
      const before = fetches;
      await expect
        .poll(() => codeOf(remote.verify(leaked)), { timeout: 3_000, interval: 50 })
        .toBe('invalid_token');
      expect(fetches).toBeGreaterThan(before);
      expect((await remote.verify(kept)).sid).toBe('session-1');
    } finally {
      server.close();
    }
  });
});
