import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig } from '@rotor/server';
import {
  createRotorClient,
  memoryStorage,
  type RotorClient,
  type TokenStorage,
} from '@rotor/client';
import { attachRotor } from '@rotor/client/axios';
import type { FastifyInstance } from 'fastify';

const dir = mkdtempSync(join(tmpdir(), 'rotor-race-'));
const PASSWORD = 'correct horse battery';
const PARALLEL = 20;

/**
 * A `node:http` proxy in front of Rotor that counts `POST /auth/refresh` and can stage issue 14's
 * race: the next `size` calls to `/auth/me` are held until all of them have arrived (so each was sent
 * with the same token); then the first goes on (its 401 starts the refresh), and the others only
 * once `release` settles (the client holds a new token). With `leader: false` all of them wait for
 * `release` (the new token comes from elsewhere, e.g. another tab).
 */
function countingProxy(upstream: URL) {
  let refreshes = 0;
  let stage:
    | { size: number; release: Promise<unknown>; leader: boolean; held: Array<() => void> }
    | undefined;
  const heldAuthorizations: Array<string | undefined> = [];
  let allArrived: () => void = () => {};

  /** Resolves when this request may be forwarded. */
  function gate(path: string | undefined, authorization: string | undefined): Promise<void> {
    if (!stage || path !== '/auth/me' || stage.held.length === stage.size) return Promise.resolve();
    const current = stage;
    heldAuthorizations.push(authorization);
    const index = current.held.length;
    const turn = new Promise<void>((resolve) => current.held.push(resolve));
    if (current.held.length === current.size) allArrived();
    return index === 0 && current.leader
      ? turn
      : turn.then(() => current.release).then(() => undefined);
  }

  const server: Server = createHttpServer((req, res) => {
    if (req.method === 'POST' && req.url === '/auth/refresh') refreshes += 1;
    void gate(req.url, req.headers.authorization).then(() => {
      const forwarded = request(
        new URL(req.url ?? '/', upstream),
        { method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forwarded.on('error', () => res.destroy());
      req.pipe(forwarded);
    });
  });

  return {
    server,
    get refreshes() {
      return refreshes;
    },
    heldAuthorizations,
    /** Holds the next `size` calls to `/auth/me` as described above; returns when all arrived. */
    stage(size: number, release: Promise<unknown>, { leader = true } = {}): Promise<void> {
      refreshes = 0;
      heldAuthorizations.length = 0;
      stage = { size, release, leader, held: [] };
      const current = stage;
      return new Promise<void>((resolve) => {
        allArrived = () => {
          for (const go of current.held) go();
          resolve();
        };
      });
    },
  };
}

let app: FastifyInstance;
let proxy: ReturnType<typeof countingProxy>;
let proxyBase: string;
let counter = 0;
const clients: RotorClient[] = [];

beforeAll(async () => {
  // A long access lifetime: nothing here expires, every refusal comes from the retired key.
  app = await createServer(
    loadConfig({
      ROTOR_DATABASE_URL: `sqlite:${join(dir, 'race.db')}`,
      ROTOR_ACCESS_TTL: '10m',
    }),
    { logger: false },
  );
  const upstream = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
  proxy = countingProxy(upstream);
  await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
  proxyBase = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});
afterAll(async () => {
  await new Promise((resolve) => proxy.server.close(resolve));
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A body-delivery client talking to Rotor through the proxy. */
function proxiedClient(options: { storage?: TokenStorage; crossTab?: boolean } = {}) {
  const client = createRotorClient({
    baseUrl: proxyBase,
    delivery: 'body',
    autoRefresh: false,
    ...options,
  });
  clients.push(client);
  // Resolves at the client's next refresh (its own or another tab's): when it holds a new token.
  const refreshed = new Promise<void>((resolve) =>
    client.subscribe((event) => {
      if (event.type === 'refreshed') resolve();
    }),
  );
  return { client, refreshed };
}

async function signIn(client: RotorClient): Promise<void> {
  const email = `race${++counter}@example.com`;
  await client.register({ email, password: PASSWORD });
  await client.login({ email, password: PASSWORD, deviceName: 'vitest' });
}

/** As {@link proxiedClient}, signed in as a new user. */
async function signedInClient() {
  const made = proxiedClient();
  await signIn(made.client);
  return made;
}

/** `rotor keys rotate --retire-now`: every access token issued so far is refused at once. */
async function retireSigningKey(): Promise<void> {
  await app.rotor.keys.rotate(app.rotor.config.accessTtl, { retireNow: true });
}

describe('a 401 for a token already replaced is retried with the current token, not refreshed again (issue 14)', () => {
  it('client.fetch: 20 calls refused after the key is retired, answered after the refresh, make exactly one refresh', async () => {
    const { client, refreshed } = await signedInClient();
    await retireSigningKey();
    const arrived = proxy.stage(PARALLEL, refreshed);
    const calls = Array.from({ length: PARALLEL }, () => client.fetch(`${proxyBase}/auth/me`));
    await arrived;
    const responses = await Promise.all(calls);
    expect(new Set(proxy.heldAuthorizations).size).toBe(1); // all sent with the old token
    expect(responses.map((r) => r.status)).toEqual(Array(PARALLEL).fill(200));
    expect(proxy.refreshes).toBe(1);
  });

  it('axios adapter: 20 calls refused after the key is retired, answered after the refresh, make exactly one refresh', async () => {
    const { client, refreshed } = await signedInClient();
    const http = attachRotor(axios.create({ baseURL: proxyBase }), client);
    await retireSigningKey();
    const arrived = proxy.stage(PARALLEL, refreshed);
    const calls = Array.from({ length: PARALLEL }, () => http.get('/auth/me'));
    await arrived;
    const responses = await Promise.all(calls);
    expect(new Set(proxy.heldAuthorizations).size).toBe(1);
    expect(responses.map((r) => r.status)).toEqual(Array(PARALLEL).fill(200));
    expect(proxy.refreshes).toBe(1);
  });

  it('client.fetch: 20 calls refused after another tab has refreshed are retried with its token, with no refresh of their own', async () => {
    // Two tabs of one origin: one channel name, one refresh-token jar.
    const storage = memoryStorage();
    const { client: tab, refreshed } = proxiedClient({ storage, crossTab: true });
    const { client: other } = proxiedClient({ storage, crossTab: true });
    await signIn(tab);
    await expect.poll(() => other.state).not.toBeNull(); // signed in through the channel
    await retireSigningKey();
    const arrived = proxy.stage(PARALLEL, refreshed, { leader: false });
    const calls = Array.from({ length: PARALLEL }, () => tab.fetch(`${proxyBase}/auth/me`));
    await arrived;
    expect(await other.refresh()).toBe(true);
    const responses = await Promise.all(calls);
    expect(new Set(proxy.heldAuthorizations).size).toBe(1);
    expect(responses.map((r) => r.status)).toEqual(Array(PARALLEL).fill(200));
    expect(proxy.refreshes).toBe(1);
  });
});
