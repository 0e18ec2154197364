import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTENER_STALE_AFTER_MS } from '@rotor/server';
import { startTcpProxy, type ProxiedConnection, type TcpProxy } from '@rotor/testkit';
import { DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from './helpers.js';
import { call, startRotorProcess, type RotorProcess } from './rotor-process.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const postgres = DIALECTS.find((d) => d.name === 'postgres')!;

/** What a request may add to the bound: its own round trip and the polling step, under load. */
const SLACK_MS = 1_000;

/**
 * Instance A reaches PostgreSQL through a TCP proxy, so that a test can cut its `LISTEN` connection
 * without closing it (a half-open connection: no FIN, no RST, no error); B connects directly.
 */
describe.skipIf(!postgres.available)('a LISTEN connection that dies without closing', () => {
  let proxy: TcpProxy;
  let a: RotorProcess;
  let b: RotorProcess;
  /** A's environment: its database through the proxy. */
  let envOfA: Record<string, string>;
  const email = 'listener@example.com';

  beforeAll(async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const direct = new URL(url);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port) });
    const proxied = new URL(url);
    proxied.port = String(proxy.port);
    const issuer = 'https://auth.example.test';
    envOfA = { ROTOR_ISSUER: issuer, ROTOR_DATABASE_URL: proxied.toString() };
    b = await startRotorProcess({ ROTOR_ISSUER: issuer, ROTOR_DATABASE_URL: url });
    a = await startRotorProcess(envOfA);
    const registered = await call(b.url, 'POST', '/auth/register', {
      body: { email, password: PASSWORD },
    });
    expect(registered.status).toBe(201);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await proxy?.close();
  });

  /** A's `LISTEN` connections through the proxy, oldest first (the startup message names them). */
  const listenConnections = () =>
    proxy.connections().filter((c) => c.hello.includes('rotor-listen'));
  /** Bytes A sent PostgreSQL on its pool's connections: none while its cache answers. */
  const queryBytes = () =>
    proxy
      .connections()
      .filter((c) => !c.hello.includes('rotor-listen'))
      .reduce((sum, c) => sum + c.bytesToTarget, 0);

  const loginOnB = async () => {
    const response = await call(b.url, 'POST', '/auth/login', {
      body: { email, password: PASSWORD },
      headers: { 'token-delivery': 'body' },
    });
    expect(response.status).toBe(200);
    return response.body as { accessToken: string; refreshToken: string };
  };
  const logoutOnB = async (refreshToken: string) => {
    const response = await call(b.url, 'POST', '/auth/logout', { body: { refreshToken } });
    expect(response.status).toBe(204);
  };
  /** Whether A answers `/auth/me` with 200 without asking the database (from its cache). */
  const fromCacheOnA = async (token: string) => {
    const before = queryBytes();
    const me = await call(a.url, 'GET', '/auth/me', { token });
    return me.status === 200 && queryBytes() === before;
  };
  /**
   * Waits until A answers `token` from its cache, and stays so for a second: a (re)connected
   * listener also has the signing keys re-read, once, at most a second after the last read.
   */
  const cachedOnA = async (token: string) => {
    await expect.poll(() => fromCacheOnA(token), { timeout: 10_000 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await expect.poll(() => fromCacheOnA(token), { timeout: 10_000 }).toBe(true);
  };
  /** Polls A until it refuses `token`; the answer and the milliseconds since `since`. */
  const refusedOnA = async (token: string, since: number, deadlineMs: number) => {
    for (;;) {
      const me = await call(a.url, 'GET', '/auth/me', { token });
      const elapsed = performance.now() - since;
      if (me.status !== 200 || elapsed > deadlineMs) return { ...me, elapsed };
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  it('while it is healthy, heartbeats keep the cache answering and a logout on B is refused on A at once', async () => {
    const tokens = await loginOnB();
    await cachedOnA(tokens.accessToken);
    // Longer than the bound: the heartbeats prove the connection alive, and no check reads.
    const until = performance.now() + LISTENER_STALE_AFTER_MS + 1_000;
    let read = 0;
    while (performance.now() < until) {
      if (!(await fromCacheOnA(tokens.accessToken))) read += 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(read).toBe(0);
    await logoutOnB(tokens.refreshToken);
    const refused = await refusedOnA(tokens.accessToken, performance.now(), 1_000);
    expect(refused.body.error).toBe('session_revoked');
    expect(refused.elapsed).toBeLessThan(LISTENER_STALE_AFTER_MS);
  });

  it(`frozen, a logout on B is refused on A within ${LISTENER_STALE_AFTER_MS} ms, and A reconnects and caches again`, async () => {
    const tokens = await loginOnB();
    await expect.poll(() => fromCacheOnA(tokens.accessToken), { timeout: 10_000 }).toBe(true);
    const listening = listenConnections().filter((c) => !c.closed);
    expect(listening).toHaveLength(1);
    const frozen: ProxiedConnection = listening[0]!;
    frozen.freeze();
    const loggedOutAt = performance.now();
    await logoutOnB(tokens.refreshToken);
    // The notification never arrives: the heartbeat that must come back does not, and A stops
    // trusting its cache within the bound (counted from the 204, after the commit).
    const refused = await refusedOnA(
      tokens.accessToken,
      loggedOutAt,
      LISTENER_STALE_AFTER_MS + SLACK_MS,
    );
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe('session_revoked');
    expect(refused.elapsed).toBeLessThanOrEqual(LISTENER_STALE_AFTER_MS + SLACK_MS);
    // And it keeps refusing, through the reconnection.
    for (let i = 0; i < 20; i += 1) {
      const me = await call(a.url, 'GET', '/auth/me', { token: tokens.accessToken });
      expect(me.body.error).toBe('session_revoked');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // A new LISTEN connection (the frozen one was given up), and the cache answers again.
    await expect
      .poll(() => listenConnections().filter((c) => !c.closed && c !== frozen).length, {
        timeout: 10_000,
      })
      .toBe(1);
    const again = await loginOnB();
    await expect.poll(() => fromCacheOnA(again.accessToken), { timeout: 10_000 }).toBe(true);
    // The new connection carries notifications: revocation is immediate again.
    await logoutOnB(again.refreshToken);
    const refusedAgain = await refusedOnA(again.accessToken, performance.now(), 1_000);
    expect(refusedAgain.body.error).toBe('session_revoked');
  });

  it('a process whose listener is frozen still shuts down promptly', async () => {
    const known = new Set(proxy.connections());
    const other = await startRotorProcess(envOfA);
    const listener = () =>
      listenConnections().find((c) => !known.has(c) && c.bytesToTarget > 0 && !c.closed);
    await expect.poll(listener, { timeout: 10_000 }).toBeDefined();
    // Past the LISTEN: its answer has come back once a heartbeat was sent after it.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    listener()!.freeze();
    const stoppingAt = performance.now();
    expect(await other.stop()).toBe(0);
    expect(performance.now() - stoppingAt).toBeLessThan(5_000);
  });
});
