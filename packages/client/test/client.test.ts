import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig, type KyselyStore } from '@rotor/server';
import { createRotorClient, memoryStorage, type RotorClient, type RotorEvent } from '@rotor/client';
import { attachRotor } from '@rotor/client/axios';
import { fileStorage } from '@rotor/client/node';
import type { FastifyInstance } from 'fastify';

const dir = mkdtempSync(join(tmpdir(), 'rotor-client-'));
const PASSWORD = 'correct horse battery';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Past the 2 s access lifetime and the server's 1 s leeway. */
const EXPIRED = 3_100;

let app: FastifyInstance;
let base: string;
let counter = 0;
const clients: RotorClient[] = [];

beforeAll(async () => {
  // Short lifetimes and real waiting: the SDK runs on the real clock.
  const config = loadConfig({
    ROTOR_DATABASE_URL: `sqlite:${join(dir, 'client.db')}`,
    ROTOR_ACCESS_TTL: '2s',
    ROTOR_REFRESH_TTL: '4s',
    ROTOR_REFRESH_GRACE: '1s',
  });
  app = await createServer(config, { logger: false });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A body-delivery client (a mobile or server app) signed in as a new user. */
async function signedInClient(options: Partial<Parameters<typeof createRotorClient>[0]> = {}) {
  const client = createRotorClient({
    baseUrl: base,
    delivery: 'body',
    autoRefresh: false,
    ...options,
  });
  clients.push(client);
  const events: RotorEvent[] = [];
  client.subscribe((event) => events.push(event));
  const email = `sdk${++counter}@example.com`;
  await client.register({ email, password: PASSWORD });
  await client.login({ email, password: PASSWORD, deviceName: 'vitest' });
  return { client, events, email };
}

/** Rotations of a session, counted on the server: its rotated refresh tokens. */
async function rotations(sessionId: string): Promise<number> {
  const rows = await (app.rotor.store as KyselyStore).db
    .selectFrom('user_tokens')
    .select('token_hash')
    .where('session_id', '=', sessionId)
    .where('rotated_at', 'is not', null)
    .execute();
  return rows.length;
}

describe('@rotor/client against a real Rotor (body delivery)', () => {
  it('signs in, calls /auth/me and lists its session', async () => {
    const { client, events, email } = await signedInClient();
    expect(events.map((e) => e.type)).toEqual(['signed-in']);
    expect((await client.me()).user.email).toBe(email);
    const { sessions, nextCursor } = await client.listSessions();
    expect(sessions).toHaveLength(1);
    expect(nextCursor).toBeNull();
    expect(sessions[0]).toMatchObject({ current: true, deviceName: 'vitest' });
    expect(await client.getAccessToken()).toMatch(/^ey/);
  });

  it('refreshes shortly before the access token expires (proactive)', async () => {
    const { client, events } = await signedInClient({ autoRefresh: true });
    const first = await client.getAccessToken();
    const started = Date.now();
    await expect
      .poll(() => events.filter((e) => e.type === 'refreshed').length, { timeout: 3_000 })
      .toBe(1);
    // Refreshed before the 2 s lifetime ran out (the margin is a fifth of it, at least 1 s).
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await client.getAccessToken()).not.toBe(first);
  });

  it('with its clock 5 hours off, still refreshes on time: lifetimes count from when answers arrive', async () => {
    const skew = 5 * 3600_000;
    const { client, events } = await signedInClient({
      autoRefresh: true,
      now: () => Date.now() + skew,
    });
    const started = Date.now();
    await expect
      .poll(() => events.filter((e) => e.type === 'refreshed').length, { timeout: 3_000 })
      .toBe(1);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await client.me()).user).toBeTruthy();
  });

  it('a 401 token_expired triggers one refresh and one retry of the original request, each told to subscribers as it happens', async () => {
    const { client, events } = await signedInClient();
    await sleep(EXPIRED);
    const response = await client.fetch(`${base}/auth/me`);
    expect(response.status).toBe(200);
    expect(events.map((e) => e.type)).toEqual([
      'signed-in',
      'token-refused',
      'refreshed',
      'retrying',
    ]);
    expect(events[1]).toEqual({
      type: 'token-refused',
      code: 'token_expired',
      method: 'GET',
      url: `${base}/auth/me`,
    });
    expect(events[2]).toMatchObject({ type: 'refreshed', trigger: 'token_expired' });
    expect(events[3]).toEqual({ type: 'retrying', method: 'GET', url: `${base}/auth/me` });
    expect(await rotations(client.state!.sessionId)).toBe(1);
  });

  it('tells what started each refresh: refresh() is manual, the timer scheduled, a call for an expiring token due', async () => {
    let offset = 0;
    const { client, events } = await signedInClient({ now: () => Date.now() + offset });
    const triggers = () => events.flatMap((e) => (e.type === 'refreshed' ? [e.trigger] : []));
    expect(await client.refresh()).toBe(true);
    client.setAutoRefresh(true);
    await expect.poll(() => triggers().length, { timeout: 3_000 }).toBe(2);
    client.setAutoRefresh(false);
    offset = 1_500; // the token now looks within its refresh margin
    await client.getAccessToken();
    expect(triggers()).toEqual(['manual', 'scheduled', 'due']);
  });

  it('single flight: 20 parallel calls after expiry share 1 refresh, counted on the server', async () => {
    const { client } = await signedInClient();
    await sleep(EXPIRED);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => client.fetch(`${base}/auth/me`)),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(await rotations(client.state!.sessionId)).toBe(1);
  });

  it('replays a request body on the retry, and never loops', async () => {
    const { client } = await signedInClient();
    await sleep(EXPIRED);
    // A POST with a JSON body: refreshed, retried once with the same body (logout-all answers 204).
    const retried = await client.fetch(`${base}/auth/logout-all`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"reason":"test"}',
    });
    expect(retried.status).toBe(204);
  });

  it('signs out with reason logout', async () => {
    const { client, events } = await signedInClient();
    await client.logout();
    expect(events.at(-1)).toEqual({ type: 'signed-out', reason: 'logout' });
    expect(client.state).toBeNull();
  });

  it('signs out with reason revoked when another device revokes this one', async () => {
    const { client, events, email } = await signedInClient();
    const other = createRotorClient({ baseUrl: base, delivery: 'body', autoRefresh: false });
    clients.push(other);
    await other.login({ email, password: PASSWORD });
    await other.revokeSession(client.state!.sessionId);
    const response = await client.fetch(`${base}/auth/me`);
    expect(response.status).toBe(401);
    expect(events.at(-1)).toEqual({ type: 'signed-out', reason: 'revoked', detail: 'revoked' });
  });

  it('signs out with reason logout_all after signing out everywhere; the other devices hear detail logout_all', async () => {
    const { client, events, email } = await signedInClient();
    const other = createRotorClient({ baseUrl: base, delivery: 'body', autoRefresh: false });
    clients.push(other);
    const otherEvents: RotorEvent[] = [];
    other.subscribe((event) => otherEvents.push(event));
    await other.login({ email, password: PASSWORD });
    await client.logoutAll();
    expect(events.at(-1)).toEqual({ type: 'signed-out', reason: 'logout_all' });
    // Its refresh token is dead: the refresh says why, and the device tells its user.
    expect(await other.refresh()).toBe(false);
    expect(otherEvents.at(-1)).toEqual({
      type: 'signed-out',
      reason: 'revoked',
      detail: 'logout_all',
    });
  });

  it('signs out with reason expired after the idle lifetime', async () => {
    const { client, events } = await signedInClient();
    await sleep(4_200);
    expect(await client.refresh()).toBe(false);
    expect(events.at(-1)).toEqual({ type: 'signed-out', reason: 'expired', detail: 'idle' });
  });

  it('signs out with reason reuse_detected when a stale copy of its token is replayed', async () => {
    const storage = memoryStorage();
    const { client, events } = await signedInClient({ storage });
    const stale = await storage.get();
    expect(await client.refresh()).toBe(true);
    await sleep(1_100); // past the grace window
    await storage.set(stale!); // e.g. a restored backup of the token file
    expect(await client.refresh()).toBe(false);
    expect(events.at(-1)).toEqual({ type: 'signed-out', reason: 'reuse_detected' });
    expect(await storage.get()).toBeNull();
  });

  it('fileStorage keeps the refresh token in a 0600 file, so restore() survives a restart', async () => {
    const path = join(dir, 'cli', 'token');
    const { client } = await signedInClient({ storage: fileStorage(path) });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const restarted = createRotorClient({
      baseUrl: base,
      delivery: 'body',
      storage: fileStorage(path),
      autoRefresh: false,
    });
    clients.push(restarted);
    expect((await restarted.restore())?.email).toBe(client.state!.user.email);
    await restarted.logout();
    expect(await fileStorage(path).get()).toBeNull();
  });

  it('the axios adapter adds the token, and on 401 token_expired refreshes once and retries', async () => {
    let offset = 0;
    const { client, events } = await signedInClient({ now: () => Date.now() + offset });
    const http = attachRotor(axios.create({ baseURL: base }), client);
    expect((await http.get('/auth/me')).status).toBe(200);
    await sleep(EXPIRED);
    offset = -5_000; // the client's clock falls behind: it believes its token is still fresh
    const response = await http.get('/auth/me');
    expect(response.status).toBe(200);
    expect(events.slice(1)).toMatchObject([
      { type: 'token-refused', code: 'token_expired', method: 'GET', url: `${base}/auth/me` },
      { type: 'refreshed', trigger: 'token_expired' },
      { type: 'retrying', method: 'GET', url: `${base}/auth/me` },
    ]);
    expect(await rotations(client.state!.sessionId)).toBe(1);
  });

  it('after the signing key is retired at once (a leak), fetch and the axios adapter refresh on 401 invalid_token and go on', async () => {
    const { client } = await signedInClient();
    const http = attachRotor(axios.create({ baseURL: base }), client);
    expect((await http.get('/auth/me')).status).toBe(200);
    await app.rotor.keys.rotate(app.rotor.config.accessTtl, { retireNow: true });
    const refused = await fetch(`${base}/auth/me`, {
      headers: { authorization: `Bearer ${await client.getAccessToken()}` },
    });
    expect([refused.status, ((await refused.json()) as { error: string }).error]).toEqual([
      401,
      'invalid_token',
    ]);
    expect((await http.get('/auth/me')).status).toBe(200);
    expect(await rotations(client.state!.sessionId)).toBe(1);
    await app.rotor.keys.rotate(app.rotor.config.accessTtl, { retireNow: true });
    expect((await client.fetch(`${base}/auth/me`)).status).toBe(200);
    expect(await rotations(client.state!.sessionId)).toBe(2);
  });

  it('without Web Locks (Node), tabs still share sign-in, refreshes and sign-out over BroadcastChannel', async () => {
    expect((globalThis.navigator as { locks?: unknown } | undefined)?.locks).toBeUndefined();
    // Two "tabs" of one origin: one channel name, one shared refresh-token jar.
    const storage = memoryStorage();
    const make = () => {
      const tab = createRotorClient({
        baseUrl: base,
        delivery: 'body',
        storage,
        autoRefresh: false,
        crossTab: true,
      });
      clients.push(tab);
      const events: RotorEvent[] = [];
      tab.subscribe((event) => events.push(event));
      return { tab, events };
    };
    const a = make();
    const b = make();
    const email = `tabs${++counter}@example.com`;
    await a.tab.register({ email, password: PASSWORD });
    await a.tab.login({ email, password: PASSWORD });
    await expect.poll(() => b.events.map((e) => e.type)).toEqual(['signed-in']);
    await sleep(EXPIRED);
    const [ra, rb] = await Promise.all([
      a.tab.fetch(`${base}/auth/me`),
      b.tab.fetch(`${base}/auth/me`),
    ]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    // Unlocked, both may refresh: the grace window gives them one successor, never a re-use.
    const count = await rotations(a.tab.state!.sessionId);
    expect(count).toBeGreaterThanOrEqual(1);
    expect(count).toBeLessThanOrEqual(2);
    await a.tab.logout();
    await expect.poll(() => b.events.at(-1)).toEqual({ type: 'signed-out', reason: 'logout' });
    expect(b.tab.state).toBeNull();
  });
});

describe('@rotor/client and a locked account', () => {
  it("keeps the device token a login leaves and sends it with the next login, which strangers' guesses then cannot block", async () => {
    const deviceStorage = memoryStorage();
    const { client, email } = await signedInClient({ deviceStorage });
    expect(await deviceStorage.get()).toMatch(/^ey/);
    await client.logout();
    // Five wrong passwords from elsewhere spend the account's budget.
    for (let i = 0; i < 5; i += 1) {
      const answer = await fetch(`${base}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: `stranger ${i}` }),
      });
      expect(answer.status).toBe(401);
    }
    const stranger = createRotorClient({ baseUrl: base, delivery: 'body', autoRefresh: false });
    clients.push(stranger);
    await expect(stranger.login({ email, password: PASSWORD })).rejects.toMatchObject({
      code: 'rate_limited',
    });
    expect((await client.login({ email, password: PASSWORD })).email).toBe(email);
  });
});

describe('@rotor/client and a rate-limited refresh', () => {
  let limited: FastifyInstance;
  let limitedBase: string;
  beforeAll(async () => {
    // One refresh per session per minute: the second is answered 429 with Retry-After: 60 (the
    // first leaves the window a minute after it was made).
    limited = await createServer(
      loadConfig({
        ROTOR_DATABASE_URL: `sqlite:${join(dir, 'limited.db')}`,
        ROTOR_ACCESS_TTL: '2s',
        ROTOR_RATE_LIMIT_REFRESH: '1/1m',
      }),
      { logger: false },
    );
    limitedBase = await limited.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => limited.close());

  it('surfaces 429 with its Retry-After, waits that long before the next background try, and stays signed in', async () => {
    const refreshCalls: number[] = [];
    const client = createRotorClient({
      baseUrl: limitedBase,
      delivery: 'body',
      fetch: (input, init) => {
        if (String(input).endsWith('/auth/refresh')) refreshCalls.push(Date.now());
        return fetch(input, init);
      },
    });
    clients.push(client);
    const email = `limited${++counter}@example.com`;
    await client.register({ email, password: PASSWORD });
    await client.login({ email, password: PASSWORD });
    expect(await client.refresh()).toBe(true);
    const error = await client.refresh().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'rate_limited', status: 429, retryAfter: 60 });
    // The background refresh (due ~1 s after the last one) meets the same block. Retrying after a
    // fixed 5 s would make another call within the next 6 s; the SDK waits the 60 s it was told.
    await expect.poll(() => refreshCalls.length, { timeout: 3_000 }).toBe(3);
    await sleep(6_000);
    expect(refreshCalls).toHaveLength(3);
    expect(client.state).not.toBeNull();
  });
});
