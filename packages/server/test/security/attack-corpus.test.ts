import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, createPublicKey, generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { exportJWK, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig } from '@rotor/server';
import { createVerifier, type Verifier } from '@rotor/verify';
import { login, newDatabaseUrl, registerUser, tempDir } from '../helpers.js';

/**
 * The attack corpus: every token below is refused with `401 invalid_token` by Rotor's own routes
 * and by `@rotor/verify`, and never answered `500`. Most are signed with Rotor's real private key,
 * so the header or claim under test is the only thing wrong with them.
 */
const { dir, cleanup } = tempDir();

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

let app: FastifyInstance;
let base: string;
let verifier: Verifier;
let claims: JWTPayload;
let kid: string;
/** Requests that reached the attacker's server (jku, x5u): must stay empty. */
const fetched: string[] = [];
let attacker: Server;
let attackerUrl: string;
const stranger = generateKeyPairSync('ed25519');

beforeAll(async () => {
  attacker = createHttpServer((request, response) => {
    fetched.push(request.url ?? '');
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ keys: [] }));
  });
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;

  const config = loadConfig({
    ROTOR_DATABASE_URL: await newDatabaseUrl('sqlite', dir),
    ROTOR_ISSUER: 'https://auth.example.test',
  });
  app = await createServer(config, { logger: false });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  verifier = createVerifier({
    issuer: config.issuer,
    audience: config.audience,
    jwksUri: `${base}/.well-known/jwks.json`,
  });
  const email = await registerUser(app);
  const { body } = await login(app, email);
  const [header, payload] = body.accessToken!.split('.');
  claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as JWTPayload;
  kid = (JSON.parse(Buffer.from(header!, 'base64url').toString()) as { kid: string }).kid;
});
afterAll(async () => {
  await app?.close();
  attacker?.close();
  cleanup();
});

/**
 * A token signed with Rotor's current private key: real signature, chosen header and claims. Signed
 * with node:crypto directly, since jose rightly refuses to sign some of these (unknown `crit`,
 * non-finite `exp`); `rawPayload` lets a test write JSON no object can hold (`1e400`).
 */
function signedByRotor(header: Record<string, unknown>, payload: JWTPayload, rawPayload?: string) {
  const protectedHeader = { alg: 'EdDSA', typ: 'at+jwt', kid, ...header };
  const body = Buffer.from(rawPayload ?? JSON.stringify(payload)).toString('base64url');
  const input = `${b64(protectedHeader)}.${body}`;
  const key = KeyObject.from(app.rotor.keys.current.privateKey);
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
}

/** An HS256 token whose secret is `secret`, built by hand (jose refuses such misuse). */
function hs256(header: Record<string, unknown>, payload: JWTPayload, secret: string | Buffer) {
  const input = `${b64({ alg: 'HS256', ...header })}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);
const without = (name: string) => () => {
  const copy: JWTPayload = { ...claims };
  delete copy[name];
  return copy;
};

const corpus: [string, () => Promise<string> | string][] = [
  ['alg none, no signature', () => `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${b64(claims)}.`],
  [
    'alg NONE spelled in capitals',
    () => `${b64({ alg: 'NONE', typ: 'at+jwt', kid })}.${b64(claims)}.`,
  ],
  [
    'HS256 signed with the public key as PEM (algorithm confusion)',
    async () => {
      const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as {
        keys: object[];
      };
      const pem = createPublicKey({ key: jwks.keys[0] as never, format: 'jwk' })
        .export({ type: 'spki', format: 'pem' })
        .toString();
      return hs256({ typ: 'at+jwt', kid }, claims, pem);
    },
  ],
  ['an unknown kid', () => signedByRotor({ kid: 'no-such-key' }, claims)],
  ['a kid with path traversal', () => signedByRotor({ kid: '../../../../etc/passwd' }, claims)],
  [
    'a kid with SQL',
    () => signedByRotor({ kid: "x' OR '1'='1'; DROP TABLE sessions; --" }, claims),
  ],
  [
    'a jku header pointing at the attacker (never fetched)',
    async () => {
      const token = new SignJWT(claims).setProtectedHeader({
        alg: 'EdDSA',
        typ: 'at+jwt',
        kid: 'attacker',
        jku: `${attackerUrl}/jwks.json`,
      });
      return token.sign(stranger.privateKey);
    },
  ],
  [
    'an x5u header pointing at the attacker (never fetched)',
    () =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid, x5u: `${attackerUrl}/cert.pem` })
        .sign(stranger.privateKey),
  ],
  [
    "an embedded jwk header with the attacker's key",
    async () =>
      new SignJWT(claims)
        .setProtectedHeader({
          alg: 'EdDSA',
          typ: 'at+jwt',
          jwk: await exportJWK(stranger.publicKey),
        })
        .sign(stranger.privateKey),
  ],
  [
    'an unknown crit extension',
    () => signedByRotor({ crit: ['urn:example:must-know'], 'urn:example:must-know': true }, claims),
  ],
  [
    'exp of 1e400 (not finite), really signed',
    () => signedByRotor({}, claims, JSON.stringify(claims).replace(/"exp":\d+/, '"exp":1e400')),
  ],
  ['nbf in the future', () => signedByRotor({}, { ...claims, nbf: now() + 3600 })],
  ['iat in the future', () => signedByRotor({}, { ...claims, iat: now() + 3600 })],
  ['no sub', () => signedByRotor({}, without('sub')())],
  ['no sid', () => signedByRotor({}, without('sid')())],
  ['no exp', () => signedByRotor({}, without('exp')())],
  ['no iat', () => signedByRotor({}, without('iat')())],
  ['no iss', () => signedByRotor({}, without('iss')())],
  ['no aud', () => signedByRotor({}, without('aud')())],
  ['sub of the wrong type', () => signedByRotor({}, { ...claims, sub: 42 as unknown as string })],
  ['typ JWT instead of at+jwt', () => signedByRotor({ typ: 'JWT' }, claims)],
  ['no typ', () => signedByRotor({ typ: undefined }, claims)],
  ['another issuer', () => signedByRotor({}, { ...claims, iss: 'https://evil.example' })],
  ['another audience', () => signedByRotor({}, { ...claims, aud: 'someone-else' })],
  ['a token over 8 KiB', () => signedByRotor({}, { ...claims, pad: 'x'.repeat(8 * 1024) })],
  ['not a JWT at all', () => 'not-a-token'],
  ['a JWE-shaped token (five parts)', () => 'a.b.c.d.e'],
  [
    'a header that is not JSON',
    () => `${Buffer.from('{{{').toString('base64url')}.${b64(claims)}.AAAA`,
  ],
];

describe('attack corpus: access tokens', () => {
  it('the real token passes both checks (the corpus is not refused for some other reason)', async () => {
    const token = signedByRotor({}, claims);
    const me = await fetch(`${base}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    await expect(verifier.verify(token)).resolves.toMatchObject({ sub: claims.sub });
  });

  it.each(corpus)('%s → 401 invalid_token, here and in @rotor/verify', async (_label, make) => {
    const token = await make();
    const response = await fetch(`${base}/auth/me`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_token');
    expect(response.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'invalid_token' });
    expect(fetched).toEqual([]);
  });
});

describe('attack corpus: cookies and accounts', () => {
  it.each([
    ['a cookie value with control bytes', 'rotor_access=abc\u0001def'],
    ['a cookie with bytes over 0x7f', 'rotor_access=\u00ff\u00fe'],
    ['a cookie with a percent-encoded NUL', 'rotor_access=%00'],
    ['a refresh cookie with invalid bytes', 'rotor_refresh=%ff%fe%00'],
  ])('%s is refused, never 500', async (_label, cookie) => {
    const response = await app.inject({
      method: 'GET',
      url: '/auth/me',
      headers: { cookie },
    });
    expect(response.statusCode).toBe(401);
    expect(['invalid_token', 'missing_token']).toContain(response.json().error);
  });

  it.each([
    ['  Grace@Example.COM  ', 'grace@example.com'],
    ['ＬＩＮＵＳ@example.com', 'linus@example.com'],
    ['barbara@EXAMPLE.com', 'barbara@example.com'],
  ])(
    'the email %j is the account %j: signing up again is email_taken',
    async (spelling, canonical) => {
      const register = (email: string) =>
        app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email, password: 'correct horse battery' },
        });
      expect((await register(canonical)).statusCode).toBe(201);
      const second = await register(spelling);
      expect(second.statusCode).toBe(409);
      expect(second.json().error).toBe('email_taken');
    },
  );
});
