import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig } from '@rotor/server';
import {
  createVerifier,
  MemoryDpopReplayStore,
  VerifyError,
  type DpopReplayStore,
  type RotorClaims,
  type Verifier,
  type VerifierOptions,
} from '@rotor/verify';
import { rotorExpress } from '@rotor/verify/express';
import { authOf, rotorVerify } from '@rotor/verify/fastify';
import { rotorHono } from '@rotor/verify/hono';
import { dpopKey, type DpopTestKey } from './dpop-kit.js';

/**
 * Issue 18, resource servers: `@rotor/verify` and its adapters accept a DPoP-bound token only with
 * a proof by its key for this request (RFC 9449 §7), against a real Rotor (login with a proof, its
 * JWKS over HTTP) and real sockets. Every hostile case is a proof made by hand.
 */

const ISSUER = 'http://rotor.test';
const PASSWORD = 'correct horse battery';
const PUBLIC_URL = 'https://api.example.test';
const dir = mkdtempSync(join(tmpdir(), 'rotor-verify-dpop-'));
let rotor: FastifyInstance;
let rotorBase: string;
let counter = 0;

beforeAll(async () => {
  rotor = await createServer(
    loadConfig({
      ROTOR_DATABASE_URL: `sqlite:${join(dir, 'rotor.db')}`,
      ROTOR_ISSUER: ISSUER,
      ROTOR_RATE_LIMIT: 'off',
    }),
    { logger: false },
  );
  rotorBase = await rotor.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await rotor?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** One request on a new connection (no keep-alive pool): concurrent sends are concurrent sockets. */
function send(
  url: string,
  options: { method?: string; headers?: Record<string, string | string[]>; body?: unknown } = {},
): Promise<Answer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      url,
      {
        method: options.method ?? 'GET',
        agent: false,
        headers: {
          ...options.headers,
          ...(payload !== undefined && { 'content-type': 'application/json' }),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

/** A new user signed in at the real Rotor: with a proof by `key` (a bound session), else Bearer. */
async function signIn(key?: DpopTestKey): Promise<{ accessToken: string; tokenType: string }> {
  const email = `verify-dpop-${++counter}@example.com`;
  const registered = await send(`${rotorBase}/auth/register`, {
    method: 'POST',
    body: { email, password: PASSWORD },
  });
  expect(registered.status).toBe(201);
  const login = await send(`${rotorBase}/auth/login`, {
    method: 'POST',
    headers: {
      'token-delivery': 'body',
      ...(key && { dpop: await key.proof('POST', `${ISSUER}/auth/login`) }),
    },
    body: { email, password: PASSWORD },
  });
  expect(login.status, JSON.stringify(login.body)).toBe(200);
  return login.body as { accessToken: string; tokenType: string };
}

const verifierOf = (dpop?: VerifierOptions['dpop']) =>
  createVerifier({
    issuer: ISSUER,
    audience: 'rotor',
    jwksUri: `${rotorBase}/.well-known/jwks.json`,
    ...(dpop && { dpop }),
  });

/** A resource server listening on loopback: `GET`/`POST /notes` behind the adapter. */
interface ResourceServer {
  /** `http://127.0.0.1:port` */
  base: string;
  close(): Promise<void>;
}
type StartAdapter = (verifier: Verifier, publicUrl?: string) => Promise<ResourceServer>;

async function listen(server: Server): Promise<ResourceServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const ADAPTERS: Record<string, StartAdapter> = {
  async fastify(verifier, publicUrl) {
    const app = Fastify({ logger: false });
    await app.register(rotorVerify, { verifier, ...(publicUrl && { publicUrl }) });
    const handler = async (request: Parameters<typeof authOf>[0]) => ({ auth: authOf(request) });
    app.get('/notes', { preHandler: app.rotorAuthenticate }, handler);
    app.post('/notes', { preHandler: app.rotorAuthenticate }, handler);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    return { base, close: () => app.close() };
  },

  async express(verifier, publicUrl) {
    const app = express();
    const guard = rotorExpress(verifier, { ...(publicUrl && { publicUrl }) });
    const handler = (request: express.Request, response: express.Response) => {
      response.json({ auth: (request as unknown as { auth: RotorClaims }).auth });
    };
    app.get('/notes', guard, handler);
    app.post('/notes', guard, handler);
    return listen(createHttpServer(app));
  },

  async hono(verifier, publicUrl) {
    const app = new Hono<{ Variables: { auth: RotorClaims } }>();
    app.use('/notes', rotorHono(verifier, { ...(publicUrl && { publicUrl }) }));
    app.on(['GET', 'POST'], '/notes', (c) => c.json({ auth: c.get('auth') }));
    // Node's request as a fetch Request, the URL from the Host header (as @hono/node-server does).
    return listen(
      createHttpServer(async (incoming, outgoing) => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(incoming.headers)) {
          for (const one of [value ?? []].flat()) headers.append(name, one);
        }
        const response = await app.fetch(
          new Request(`http://${incoming.headers.host}${incoming.url}`, {
            method: incoming.method,
            headers,
          }),
        );
        const answerHeaders: Record<string, string> = {};
        response.headers.forEach((value, name) => (answerHeaders[name] = value));
        outgoing.writeHead(response.status, answerHeaders);
        outgoing.end(Buffer.from(await response.arrayBuffer()));
      }),
    );
  },
};

describe('createVerifier: the scheme rules without a framework', () => {
  it('verify(token) and verifyRequest(headers) without a target refuse a bound token (DPoP challenge); with the target and exactly one proof it passes', async () => {
    const key = await dpopKey();
    const { accessToken } = await signIn(key);
    const verifier = verifierOf();
    for (const attempt of [
      () => verifier.verify(accessToken),
      () => verifier.verifyRequest({ authorization: `Bearer ${accessToken}` }),
      () => verifier.verifyRequest({ cookie: `rotor_access=${accessToken}` }),
    ]) {
      const error = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(VerifyError);
      expect((error as VerifyError).code).toBe('invalid_token');
      expect((error as VerifyError).scheme).toBe('DPoP');
      expect((error as VerifyError).wwwAuthenticate).toMatch(/^DPoP error="invalid_token", algs="/);
    }
    // The old, Bearer-only call cannot check a proof: the DPoP scheme is refused.
    const proof = await key.proof('GET', 'http://api.test/notes', { accessToken });
    await expect(
      verifier.verifyRequest({ authorization: `DPoP ${accessToken}`, dpop: proof }),
    ).rejects.toMatchObject({ code: 'invalid_token' });
    // Proofs as an array (a framework that keeps repeated headers apart): not exactly one.
    await expect(
      verifier.verifyRequest(
        { authorization: `DPoP ${accessToken}`, dpop: [proof, proof] },
        { method: 'GET', url: 'http://api.test/notes' },
      ),
    ).rejects.toMatchObject({ code: 'invalid_dpop_proof' });
    // With the target, the same request passes.
    await expect(
      verifier.verifyRequest(
        { authorization: `DPoP ${accessToken}`, dpop: proof },
        { method: 'GET', url: 'http://api.test/notes?page=2' },
      ),
    ).resolves.toMatchObject({ cnf: { jkt: key.jkt } });
  });

  it('a shared replay store is asked for every proof, and its answer is final', async () => {
    const key = await dpopKey();
    const { accessToken } = await signIn(key);
    const memory = new MemoryDpopReplayStore();
    const claimed: string[] = [];
    const replay: DpopReplayStore = {
      claim: async (jti, expiresAt) => {
        claimed.push(jti);
        return memory.claim(jti, expiresAt);
      },
    };
    // Two instances of one resource server, one store between them.
    const [first, second] = [verifierOf({ replay }), verifierOf({ replay })];
    const target = { method: 'GET', url: 'http://api.test/notes' };
    const headers = {
      authorization: `DPoP ${accessToken}`,
      dpop: await key.proof('GET', target.url, { accessToken }),
    };
    await expect(first!.verifyRequest(headers, target)).resolves.toMatchObject({
      sub: expect.any(String),
    });
    await expect(second!.verifyRequest(headers, target)).rejects.toMatchObject({
      code: 'invalid_dpop_proof',
    });
    expect(claimed).toHaveLength(2);
  });
});

for (const [name, start] of Object.entries(ADAPTERS)) {
  describe(`@rotor/verify/${name}: DPoP-bound tokens against a real Rotor`, () => {
    let plain: ResourceServer;
    let required: ResourceServer;
    let behindProxy: ResourceServer;
    let withNonces: ResourceServer;
    const NONCE = 'nonce-of-this-slot';

    beforeAll(async () => {
      plain = await start(verifierOf());
      required = await start(verifierOf({ required: true }));
      behindProxy = await start(verifierOf(), PUBLIC_URL);
      withNonces = await start(
        verifierOf({ nonces: { current: () => NONCE, accepts: (nonce) => nonce === NONCE } }),
      );
    });
    afterAll(async () => {
      await Promise.all([plain, required, behindProxy, withNonces].map((s) => s?.close()));
    });

    /** A protected call: `Authorization: <scheme> <token>`, and the proof when given. */
    const call = (
      server: ResourceServer,
      scheme: string,
      token: string,
      proof?: string | string[],
      options: { method?: string; path?: string } = {},
    ) =>
      send(`${server.base}${options.path ?? '/notes'}`, {
        method: options.method ?? 'GET',
        headers: {
          authorization: `${scheme} ${token}`,
          ...(proof !== undefined && { dpop: proof }),
        },
      });

    it('a bound token with a good proof is served, with its claims; the query is not part of htu', async () => {
      const key = await dpopKey();
      const { accessToken, tokenType } = await signIn(key);
      expect(tokenType).toBe('DPoP');
      const url = `${plain.base}/notes`;
      const ok = await call(
        plain,
        'DPoP',
        accessToken,
        await key.proof('GET', url, { accessToken }),
      );
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      expect(ok.body.auth).toMatchObject({ iss: ISSUER, cnf: { jkt: key.jkt } });
      const withQuery = await call(
        plain,
        'DPoP',
        accessToken,
        await key.proof('POST', url, { accessToken }),
        { method: 'POST', path: '/notes?page=2' },
      );
      expect(withQuery.status, JSON.stringify(withQuery.body)).toBe(200);
    });

    it('a bound token presented as Bearer or in the cookie is refused with a DPoP challenge', async () => {
      const key = await dpopKey();
      const { accessToken } = await signIn(key);
      const asBearer = await call(plain, 'Bearer', accessToken);
      expect([asBearer.status, asBearer.body.error]).toEqual([401, 'invalid_token']);
      expect(asBearer.headers['www-authenticate']).toMatch(/^DPoP error="invalid_token", algs="/);
      // Even with a good proof beside it: the scheme is Bearer.
      const withProof = await call(
        plain,
        'Bearer',
        accessToken,
        await key.proof('GET', `${plain.base}/notes`, { accessToken }),
      );
      expect([withProof.status, withProof.body.error]).toEqual([401, 'invalid_token']);
      const inCookie = await send(`${plain.base}/notes`, {
        headers: { cookie: `rotor_access=${accessToken}` },
      });
      expect([inCookie.status, inCookie.body.error]).toEqual([401, 'invalid_token']);
      expect(inCookie.headers['www-authenticate']).toMatch(/^DPoP error="invalid_token"/);
    });

    it('a proof by another key than the bound one is refused (a stolen token with the thief’s key)', async () => {
      const key = await dpopKey();
      const thief = await dpopKey();
      const { accessToken } = await signIn(key);
      const answer = await call(
        plain,
        'DPoP',
        accessToken,
        await thief.proof('GET', `${plain.base}/notes`, { accessToken }),
      );
      expect([answer.status, answer.body.error]).toEqual([401, 'invalid_dpop_proof']);
      expect(answer.headers['www-authenticate']).toMatch(
        /^DPoP error="invalid_dpop_proof", algs="/,
      );
    });

    it('a proof for another URL or another method is refused', async () => {
      const key = await dpopKey();
      const { accessToken } = await signIn(key);
      for (const proof of [
        await key.proof('GET', `${plain.base}/other`, { accessToken }),
        await key.proof('GET', `http://api.elsewhere.test/notes`, { accessToken }),
        await key.proof('POST', `${plain.base}/notes`, { accessToken }),
      ]) {
        const answer = await call(plain, 'DPoP', accessToken, proof);
        expect([answer.status, answer.body.error]).toEqual([401, 'invalid_dpop_proof']);
      }
    });

    it('a proof is accepted once: the same proof again is refused', async () => {
      const key = await dpopKey();
      const { accessToken } = await signIn(key);
      const proof = await key.proof('GET', `${plain.base}/notes`, { accessToken });
      expect((await call(plain, 'DPoP', accessToken, proof)).status).toBe(200);
      const again = await call(plain, 'DPoP', accessToken, proof);
      expect([again.status, again.body.error]).toEqual([401, 'invalid_dpop_proof']);
    });

    it('one proof sent 20 times at once over 20 sockets is served exactly once', async () => {
      const key = await dpopKey();
      const { accessToken } = await signIn(key);
      const proof = await key.proof('GET', `${plain.base}/notes`, { accessToken });
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => call(plain, 'DPoP', accessToken, proof)),
      );
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 401)).toHaveLength(19);
    });

    it('a proof without ath, or with the ath of another token, is refused', async () => {
      const key = await dpopKey();
      const { accessToken } = await signIn(key);
      const url = `${plain.base}/notes`;
      const other = (await signIn(key)).accessToken;
      for (const proof of [
        await key.proof('GET', url, { accessToken, claims: { ath: undefined } }),
        await key.proof('GET', url, { accessToken: other }),
      ]) {
        const answer = await call(plain, 'DPoP', accessToken, proof);
        expect([answer.status, answer.body.error]).toEqual([401, 'invalid_dpop_proof']);
      }
    });

    it('the DPoP scheme needs exactly one proof, and a bound token', async () => {
      const key = await dpopKey();
      const { accessToken } = await signIn(key);
      const url = `${plain.base}/notes`;
      const none = await call(plain, 'DPoP', accessToken);
      expect([none.status, none.body.error]).toEqual([401, 'invalid_dpop_proof']);
      const two = await call(plain, 'DPoP', accessToken, [
        await key.proof('GET', url, { accessToken }),
        await key.proof('GET', url, { accessToken }),
      ]);
      expect([two.status, two.body.error]).toEqual([401, 'invalid_dpop_proof']);
      // A Bearer session's token is not bound: under the DPoP scheme it is refused.
      const bearer = (await signIn()).accessToken;
      const unbound = await call(
        plain,
        'DPoP',
        bearer,
        await key.proof('GET', url, { accessToken: bearer }),
      );
      expect([unbound.status, unbound.body.error]).toEqual([401, 'invalid_token']);
      expect(unbound.headers['www-authenticate']).toMatch(/^DPoP error="invalid_token"/);
    });

    it('a plain Bearer token is accepted unless dpop.required; then it is refused with a DPoP challenge', async () => {
      const { accessToken, tokenType } = await signIn();
      expect(tokenType).toBe('Bearer');
      const accepted = await call(plain, 'Bearer', accessToken);
      expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
      expect((accepted.body.auth as RotorClaims).cnf).toBeUndefined();
      const refused = await call(required, 'Bearer', accessToken);
      expect([refused.status, refused.body.error]).toEqual([401, 'invalid_token']);
      expect(refused.headers['www-authenticate']).toMatch(/^DPoP error="invalid_token"/);
      const missing = await send(`${required.base}/notes`);
      expect([missing.status, missing.body.error]).toEqual([401, 'missing_token']);
      expect(missing.headers['www-authenticate']).toMatch(/^DPoP algs="/);
      // A bound token with its proof is what a required server serves.
      const key = await dpopKey();
      const bound = (await signIn(key)).accessToken;
      const proof = await key.proof('GET', `${required.base}/notes`, { accessToken: bound });
      expect((await call(required, 'DPoP', bound, proof)).status).toBe(200);
    });

    it('behind a proxy, htu is the publicUrl: a proof for the address the server sees is refused', async () => {
      const key = await dpopKey();
      const { accessToken } = await signIn(key);
      const internal = await call(
        behindProxy,
        'DPoP',
        accessToken,
        await key.proof('GET', `${behindProxy.base}/notes`, { accessToken }),
      );
      expect([internal.status, internal.body.error]).toEqual([401, 'invalid_dpop_proof']);
      const ok = await call(
        behindProxy,
        'DPoP',
        accessToken,
        await key.proof('GET', `${PUBLIC_URL}/notes`, { accessToken }),
      );
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    });

    it('with nonces, a proof without one is answered use_dpop_nonce and DPoP-Nonce; with it, served', async () => {
      const key = await dpopKey();
      const { accessToken } = await signIn(key);
      const url = `${withNonces.base}/notes`;
      const first = await call(
        withNonces,
        'DPoP',
        accessToken,
        await key.proof('GET', url, { accessToken }),
      );
      expect([first.status, first.body.error]).toEqual([401, 'use_dpop_nonce']);
      expect(first.headers['www-authenticate']).toMatch(/^DPoP error="use_dpop_nonce"/);
      expect(first.headers['dpop-nonce']).toBe(NONCE);
      const nonce = first.headers['dpop-nonce'] as string;
      const second = await call(
        withNonces,
        'DPoP',
        accessToken,
        await key.proof('GET', url, { accessToken, nonce }),
      );
      expect(second.status, JSON.stringify(second.body)).toBe(200);
      expect(second.headers['dpop-nonce']).toBe(NONCE);
    });
  });
}
