import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig, type KyselyStore } from '@rotor/server';
import {
  createRotorClient,
  memoryStorage,
  type RotorClient,
  type RotorClientOptions,
  type RotorEvent,
  type RotorSessionPage,
} from '@rotor/client';
import { attachRotor } from '@rotor/client/axios';
import { fileDpopKey, fileStorage } from '@rotor/client/node';
import type { FastifyInstance } from 'fastify';

const dir = mkdtempSync(join(tmpdir(), 'rotor-dpop-client-'));
const PASSWORD = 'correct horse battery';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Past the 2 s access lifetime and the server's 1 s leeway. */
const EXPIRED = 3_100;

let plain: { app: FastifyInstance; base: string };
let nonced: { app: FastifyInstance; base: string };
let counter = 0;
const clients: RotorClient[] = [];

async function start(name: string, env: Record<string, string> = {}) {
  const config = loadConfig({
    ROTOR_DATABASE_URL: `sqlite:${join(dir, `${name}.db`)}`,
    ROTOR_ACCESS_TTL: '2s',
    ROTOR_REFRESH_TTL: '1m',
    ROTOR_REFRESH_GRACE: '1s',
    ...env,
  });
  const app = await createServer(config, { logger: false });
  return { app, base: await app.listen({ host: '127.0.0.1', port: 0 }) };
}

beforeAll(async () => {
  plain = await start('plain');
  nonced = await start('nonced', { ROTOR_DPOP_NONCE: 'on' });
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});
afterAll(async () => {
  await plain.app.close();
  await nonced.app.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Sent {
  method: string;
  url: string;
  status: number;
  authorization: string | null;
  dpop: string | null;
}

/** A `dpop: true` client of `server` whose requests (and their answers' statuses) are recorded. */
function dpopClient(server: { base: string } = plain, options: Partial<RotorClientOptions> = {}) {
  const sent: Sent[] = [];
  const client = createRotorClient({
    baseUrl: server.base,
    delivery: 'body',
    autoRefresh: false,
    dpop: true,
    async fetch(input, init = {}) {
      const response = await fetch(input, init);
      const headers = new Headers(init.headers);
      sent.push({
        method: init.method ?? 'GET',
        url: String(input),
        status: response.status,
        authorization: headers.get('authorization'),
        dpop: headers.get('dpop'),
      });
      return response;
    },
    ...options,
  });
  clients.push(client);
  const events: RotorEvent[] = [];
  client.subscribe((event) => events.push(event));
  return { client, sent, events };
}

async function signUp(client: RotorClient): Promise<string> {
  const email = `dpop${++counter}@example.com`;
  await client.register({ email, password: PASSWORD });
  await client.login({ email, password: PASSWORD, deviceName: 'vitest' });
  return email;
}

const decode = (part: string) =>
  JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>;
/** The header and claims of a JWT (a DPoP proof, an access token), unverified. */
function jwt(token: string) {
  const [header, claims] = token.split('.');
  return { header: decode(header!), claims: decode(claims!) };
}
/** RFC 7638: the SHA-256 thumbprint of an EC public JWK, the `cnf.jkt` of a bound token. */
function thumbprint(jwk: Record<string, unknown>): string {
  const { crv, kty, x, y } = jwk;
  return createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
}
const sessionsOf = async (client: RotorClient, base: string) =>
  (await (await client.fetch(`${base}/auth/sessions`)).json()) as RotorSessionPage;

describe('@rotor/client with dpop: true (Node, a real Rotor)', () => {
  it('a login binds the session to the key: tokenType DPoP, dpopBound through the SDK fetch, each request its own proof', async () => {
    const { client, sent } = dpopClient();
    await signUp(client);
    expect(client.state?.tokenType).toBe('DPoP');
    const token = (await client.getAccessToken())!;
    const login = sent.find((request) => request.url.endsWith('/auth/login'))!;
    const { header } = jwt(login.dpop!);
    expect(header).toMatchObject({
      typ: 'dpop+jwt',
      alg: 'ES256',
      jwk: { kty: 'EC', crv: 'P-256' },
    });
    expect(header.jwk).not.toHaveProperty('d');
    expect(jwt(login.dpop!).claims).toMatchObject({ htm: 'POST', htu: `${plain.base}/auth/login` });
    expect(jwt(login.dpop!).claims).not.toHaveProperty('ath');
    expect((jwt(token).claims.cnf as { jkt: string }).jkt).toBe(
      thumbprint(header.jwk as Record<string, unknown>),
    );

    const response = await client.fetch(`${plain.base}/auth/sessions?limit=5#top`);
    expect(response.status).toBe(200);
    const { sessions } = (await response.json()) as RotorSessionPage;
    expect(sessions[0]).toMatchObject({ current: true, dpopBound: true });
    await client.me();

    const calls = sent.filter((request) => request.authorization !== null);
    expect(calls).toHaveLength(2);
    for (const call of calls) expect(call.authorization).toBe(`DPoP ${token}`);
    const [list, me] = calls.map((call) => jwt(call.dpop!).claims);
    // htu without the query and fragment; ath the token's SHA-256; a new jti each time.
    expect(list).toMatchObject({ htm: 'GET', htu: `${plain.base}/auth/sessions` });
    expect(me).toMatchObject({ htm: 'GET', htu: `${plain.base}/auth/me` });
    expect(list!.ath).toBe(createHash('sha256').update(token).digest('base64url'));
    expect(new Set([login, ...calls].map((call) => jwt(call.dpop!).claims.jti)).size).toBe(3);
    expect(Math.abs((list!.iat as number) - Date.now() / 1000)).toBeLessThan(5);
  });

  it('the bound access token is useless without the key: sent as Bearer, refused', async () => {
    const { client } = dpopClient();
    await signUp(client);
    const token = await client.getAccessToken();
    const stolen = await fetch(`${plain.base}/auth/me`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(stolen.status).toBe(401);
    expect(((await stolen.json()) as { error: string }).error).toBe('invalid_token');
  });

  it('silent refresh keeps working: an expired token is refreshed with a proof and the call retried, still bound', async () => {
    const { client, sent, events } = dpopClient();
    await signUp(client);
    const sessionId = client.state!.sessionId;
    await sleep(EXPIRED);
    expect((await client.me()).session.id).toBe(sessionId);
    expect(events.map((event) => event.type)).toEqual([
      'signed-in',
      'token-refused',
      'refreshed',
      'retrying',
    ]);
    const refresh = sent.find((request) => request.url.endsWith('/auth/refresh'))!;
    expect(refresh.status).toBe(200);
    expect(jwt(refresh.dpop!).claims).toMatchObject({
      htm: 'POST',
      htu: `${plain.base}/auth/refresh`,
    });
    expect(client.state?.tokenType).toBe('DPoP');
    expect((await sessionsOf(client, plain.base)).sessions[0]?.dpopBound).toBe(true);
  });

  it('concurrent requests with an expired token share one refresh', async () => {
    const { client, sent } = dpopClient();
    await signUp(client);
    await sleep(EXPIRED);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => client.fetch(`${plain.base}/auth/me`)),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(200));
    expect(sent.filter((request) => request.url.endsWith('/auth/refresh'))).toHaveLength(1);
  });

  it('with ROTOR_DPOP_NONCE=on, a use_dpop_nonce answer is retried once with the nonce, and later proofs carry it', async () => {
    const { client, sent } = dpopClient(nonced);
    await signUp(client);
    const logins = sent.filter((request) => request.url.endsWith('/auth/login'));
    expect(logins.map((request) => request.status)).toEqual([401, 200]);
    expect(jwt(logins[0]!.dpop!).claims).not.toHaveProperty('nonce');
    expect(jwt(logins[1]!.dpop!).claims.nonce).toEqual(expect.any(String));
    expect((await sessionsOf(client, nonced.base)).sessions[0]?.dpopBound).toBe(true);
    await sleep(EXPIRED);
    expect((await client.me()).user).toBeTruthy();
    // The nonce learned at the login served every later proof: no more use_dpop_nonce.
    expect(sent.filter((request) => request.status === 401).map((r) => r.url)).toEqual([
      `${nonced.base}/auth/login`,
      `${nonced.base}/auth/me`, // token_expired, then refreshed
    ]);
    expect(sent.at(-2)).toMatchObject({ url: `${nonced.base}/auth/refresh`, status: 200 });
  });

  it('a protected call to an origin without a nonce yet is retried once with the nonce it is given (fetch and axios)', async () => {
    const { client, sent } = dpopClient(nonced);
    await signUp(client);
    // The same server by another loopback name: another origin, whose nonce the client has not seen.
    const other = nonced.base.replace('127.0.0.1', 'localhost');
    const response = await client.fetch(`${other}/auth/me`);
    expect(response.status).toBe(200);
    expect(sent.slice(-2).map((request) => [request.url, request.status])).toEqual([
      [`${other}/auth/me`, 401],
      [`${other}/auth/me`, 200],
    ]);
    expect(jwt(sent.at(-1)!.dpop!).claims.nonce).toEqual(expect.any(String));

    const fresh = dpopClient(nonced);
    await signUp(fresh.client);
    // What went over the wire: each attempt's status, below the interceptors.
    const statuses: number[] = [];
    const http = axios.getAdapter(axios.defaults.adapter);
    const api = attachRotor(
      axios.create({
        adapter: async (config) => {
          try {
            const answer = await http(config);
            statuses.push(answer.status);
            return answer;
          } catch (error) {
            statuses.push((error as { response?: { status: number } }).response?.status ?? 0);
            throw error;
          }
        },
      }),
      fresh.client,
    );
    const listed = await api.get<RotorSessionPage>(`${other}/auth/sessions?limit=1`);
    expect(listed.data.sessions[0]).toMatchObject({ current: true, dpopBound: true });
    expect(String(listed.config.headers.get('authorization'))).toMatch(/^DPoP /);
    expect(statuses).toEqual([401, 200]);
  });

  it('a key file is written 0600 and a second client from the same file keeps the session bound', async () => {
    const keyFile = join(dir, 'keys', 'dpop.jwk');
    const tokenFile = join(dir, 'keys', 'refresh-token');
    const first = dpopClient(plain, {
      dpop: fileDpopKey(keyFile),
      storage: fileStorage(tokenFile),
    });
    await signUp(first.client);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);
    const sessionId = first.client.state!.sessionId;
    first.client.close();

    // Another key with a copy of the refresh token gets nothing, and ends nothing.
    const stolen = memoryStorage();
    await stolen.set(readFileSync(tokenFile, 'utf8'));
    const thief = dpopClient(plain, { storage: stolen });
    expect(await thief.client.restore()).toBeNull();
    expect(thief.sent.at(-1)).toMatchObject({ url: `${plain.base}/auth/refresh`, status: 401 });

    const second = dpopClient(plain, {
      dpop: fileDpopKey(keyFile),
      storage: fileStorage(tokenFile),
    });
    expect(await second.client.restore()).not.toBeNull();
    expect(second.client.state).toMatchObject({ sessionId, tokenType: 'DPoP' });
    const { sessions } = await sessionsOf(second.client, plain.base);
    expect(sessions.find((session) => session.id === sessionId)).toMatchObject({
      current: true,
      dpopBound: true,
    });
  });

  it('logout ends a bound session on the server', async () => {
    const { client } = dpopClient();
    await signUp(client);
    const sessionId = client.state!.sessionId;
    await client.logout();
    expect(client.state).toBeNull();
    const row = await (plain.app.rotor.store as KyselyStore).db
      .selectFrom('sessions')
      .select('revoked_at')
      .where('id', '=', sessionId)
      .executeTakeFirstOrThrow();
    expect(row.revoked_at).not.toBeNull();
  });

  it('refuses a key file that others can read, as ssh does', async () => {
    const keyFile = join(dir, 'open', 'dpop.jwk');
    await fileDpopKey(keyFile).load();
    chmodSync(keyFile, 0o644);
    await expect(fileDpopKey(keyFile).load()).rejects.toThrow(/readable by others/);
  });

  it('dpop with cookies delivery is a mistake told at creation', () => {
    expect(() =>
      createRotorClient({ baseUrl: plain.base, delivery: 'cookies', dpop: true }),
    ).toThrow(TypeError);
  });
});
