import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '@rotor/testkit';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig } from '@rotor/server';
import { createVerifier } from '@rotor/verify';
import { createNotesApi } from '@rotor/example-notes-api';

const dir = mkdtempSync(join(tmpdir(), 'rotor-notes-'));
const PASSWORD = 'correct horse battery';
const SECRET = 'notes-api-introspection-secret';
let rotor: FastifyInstance;
let issuer: string;
let stateless: { app: FastifyInstance; url: string };
let strict: { app: FastifyInstance; url: string };

async function startApi(strictMode: boolean) {
  const verifier = createVerifier({
    issuer,
    audience: 'rotor',
    jwksUri: `${issuer}/.well-known/jwks.json`,
    jwksCooldownMs: 100,
    ...(strictMode && {
      strict: {
        introspectionUrl: `${issuer}/oauth/introspect`,
        clientId: 'notes-api',
        clientSecret: SECRET,
        cacheMs: 0,
      },
    }),
  });
  const app = await createNotesApi({ verifier });
  return { app, url: await app.listen({ host: '127.0.0.1', port: 0 }) };
}

beforeAll(async () => {
  const port = await freePort();
  const config = loadConfig({
    ROTOR_DATABASE_URL: `sqlite:${join(dir, 'rotor.db')}`,
    ROTOR_PORT: String(port),
    ROTOR_OAUTH_CLIENTS: JSON.stringify([{ id: 'notes-api', secret: SECRET }]),
  });
  rotor = await createServer(config, { logger: false });
  issuer = await rotor.listen({ host: '127.0.0.1', port });
  [stateless, strict] = await Promise.all([startApi(false), startApi(true)]);
});
afterAll(async () => {
  await Promise.all([stateless?.app.close(), strict?.app.close(), rotor?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

async function signIn(email: string) {
  await fetch(`${issuer}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  const response = await fetch(`${issuer}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'token-delivery': 'body' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  return (await response.json()) as {
    accessToken: string;
    refreshToken: string;
    sessionId: string;
  };
}

const notes = (base: string, token?: string, init: RequestInit = {}) =>
  fetch(`${base}/notes`, {
    ...init,
    headers: {
      ...(token && { authorization: `Bearer ${token}` }),
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });

describe('examples/notes-api protected by @rotor/verify against a real Rotor', () => {
  it('each user sees only their own notes; no token is 401 missing_token with WWW-Authenticate', async () => {
    const ada = await signIn('ada@notes.example');
    const bob = await signIn('bob@notes.example');
    expect(
      (
        await notes(stateless.url, ada.accessToken, {
          method: 'POST',
          body: JSON.stringify({ text: 'ada 1' }),
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await notes(stateless.url, bob.accessToken, {
          method: 'POST',
          body: JSON.stringify({ text: 'bob 1' }),
        })
      ).status,
    ).toBe(201);
    const mine = (await (await notes(stateless.url, ada.accessToken)).json()) as {
      notes: { text: string }[];
    };
    expect(mine.notes.map((n) => n.text)).toEqual(['ada 1']);
    const anonymous = await notes(stateless.url);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    expect(await anonymous.json()).toMatchObject({ error: 'missing_token' });
    const forged = await notes(stateless.url, `${ada.accessToken.slice(0, -4)}AAAA`);
    expect(forged.status).toBe(401);
    expect(forged.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
  });

  it('a revoked session keeps access until its token expires in stateless mode, and loses it at once in strict mode', async () => {
    const ada = await signIn('carol@notes.example');
    for (const api of [stateless, strict])
      expect((await notes(api.url, ada.accessToken)).status).toBe(200);
    const logout = await fetch(`${issuer}/auth/logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: ada.refreshToken }),
    });
    expect(logout.status).toBe(204);
    expect((await notes(stateless.url, ada.accessToken)).status).toBe(200);
    const refused = await notes(strict.url, ada.accessToken);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'session_revoked' });
  });

  it('verifies with the JWKS alone before and after a key rotation; no older token is rejected early', async () => {
    const before = await signIn('dave@notes.example');
    expect((await notes(stateless.url, before.accessToken)).status).toBe(200);
    await rotor.rotor.keys.rotate(rotor.rotor.config.accessTtl);
    await new Promise((resolve) => setTimeout(resolve, 150)); // the verifier's JWKS cooldown
    const after = await signIn('erin@notes.example');
    const kid = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid;
    expect(kid(after.accessToken)).not.toBe(kid(before.accessToken));
    const withNewKey = await notes(stateless.url, after.accessToken);
    expect([withNewKey.status, await withNewKey.text()]).toEqual([200, '{"notes":[]}']);
    const withOldKey = await notes(stateless.url, before.accessToken);
    expect([withOldKey.status, await withOldKey.text()]).toEqual([200, '{"notes":[]}']);
  });
});
