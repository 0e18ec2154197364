import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  createRotor,
  createServer,
  emptyLimitState,
  LIMITS,
  loadConfig,
  ManualClock,
  RateLimitedError,
  releaseEvent,
  reserveEvent,
  RotorError,
  type LimitState,
  type Rotor,
} from '@rotor/server';
import { DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const SECOND = 1_000;
const MINUTE = 60 * SECOND;

/** The error a promise rejects with ('ok' when it resolves), and Retry-After for 429s. */
async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (error instanceof RateLimitedError) return `rate_limited ${error.retryAfterSeconds}s`;
    if (error instanceof RotorError) return error.code;
    throw error;
  }
}

describe('the sliding log', () => {
  const rule = { name: 't', limit: 3, windowMs: MINUTE };

  /** Reserves `n` attempts at `at`; which were admitted, and the wait of the last. */
  const burst = (from: LimitState, at: number, n: number) => {
    let state = from;
    const admitted: boolean[] = [];
    let waitMs = 0;
    for (let i = 0; i < n; i += 1) {
      const next = reserveEvent(state, rule, at);
      admitted.push(next.admitted);
      waitMs = next.waitMs;
      state = next.state;
    }
    return { state, admitted, waitMs };
  };

  it('a budget of N admits exactly N attempts in any window, however they straddle window edges', () => {
    let state = emptyLimitState();
    let admitted = 0;
    // An attempt every second for ten minutes: at most 3 of them in any 60 s span.
    const times: number[] = [];
    for (let t = 0; t < 10 * MINUTE; t += SECOND) {
      const next = reserveEvent(state, rule, 10 * MINUTE + t);
      state = next.state;
      if (next.admitted) {
        admitted += 1;
        times.push(t);
      }
    }
    for (let i = rule.limit; i < times.length; i += 1) {
      expect(times[i]! - times[i - rule.limit]!).toBeGreaterThanOrEqual(rule.windowMs);
    }
    expect(admitted).toBeGreaterThan(0);
  });

  it('a refusal counts nothing and changes nothing; it tells when the oldest attempt leaves the window, when an attempt fits', () => {
    const t0 = 10 * MINUTE;
    const first = burst(emptyLimitState(), t0, 4);
    expect(first.admitted).toEqual([true, true, true, false]);
    expect(first.waitMs).toBe(MINUTE);
    expect(first.state.events).toHaveLength(3);
    expect(reserveEvent(first.state, rule, t0 + 30 * SECOND)).toMatchObject({
      admitted: false,
      waitMs: 30 * SECOND,
      state: { events: first.state.events },
    });
    // At the time it said, an attempt fits.
    expect(reserveEvent(first.state, rule, t0 + first.waitMs).admitted).toBe(true);
  });

  it('a place given back is free at once, whatever was refused meanwhile (no stored block)', () => {
    const t0 = 10 * MINUTE;
    const full = burst(emptyLimitState(), t0, 3).state;
    const refused = burst(full, t0 + 1, 10).state;
    expect(reserveEvent(releaseEvent(refused, rule, t0), rule, t0 + 2).admitted).toBe(true);
  });

  it('a released attempt gives its place back', () => {
    const t0 = 10 * MINUTE;
    const full = burst(emptyLimitState(), t0, 3).state;
    expect(reserveEvent(full, rule, t0 + 1).admitted).toBe(false);
    const released = releaseEvent(full, rule, t0);
    expect(released.events).toHaveLength(2);
    expect(reserveEvent(released, rule, t0 + 1).admitted).toBe(true);
  });
});

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`rate limits [${dialect.name}]`, () => {
    const opened: Rotor[] = [];
    afterEach(async () => {
      for (const rotor of opened.splice(0)) await rotor.close();
    });

    async function open(env: Record<string, string> = {}, url?: string, clock?: ManualClock) {
      const databaseUrl = url ?? (await newDatabaseUrl(dialect.name, dir));
      const time = clock ?? new ManualClock(Date.UTC(2030, 0, 1, 12));
      // A second engine on one SQLite file stands for the CLI beside the server (one server per
      // file); on PostgreSQL, for another instance.
      const rotor = await createRotor(loadConfig({ ROTOR_DATABASE_URL: databaseUrl, ...env }), {
        clock: time,
        sqliteServerLock: url === undefined,
      });
      opened.push(rotor);
      return { rotor, clock: time, url: databaseUrl };
    }
    const login = (rotor: Rotor, email: string, password: string, ip = '203.0.113.7') =>
      rotor.login({ email, password, deviceName: null, delivery: 'body', ip, userAgent: 'vitest' });

    it('a budget of 5 verifies five wrong passwords; the sixth attempt is refused before verification, even with the right password, until a place frees', async () => {
      const { rotor, clock } = await open();
      await rotor.register({ email: 'ada@example.com', password: PASSWORD });
      const results = [];
      for (let i = 0; i < 5; i += 1) {
        results.push(await outcome(login(rotor, 'ada@example.com', 'wrong password')));
        clock.advance(SECOND);
      }
      expect(results).toEqual(Array(5).fill('invalid_credentials'));
      // Another spelling of the same account, from another address: refused until the first of
      // the five leaves the 15-minute window.
      expect(await outcome(login(rotor, ' ADA@example.com', PASSWORD, '198.51.100.1'))).toBe(
        'rate_limited 895s',
      );
      clock.advance(895 * SECOND);
      expect(await outcome(login(rotor, 'ada@example.com', PASSWORD))).toBe('ok');
      // The success gave its attempt back: one place is free (the oldest failure left the
      // window), not a whole budget; the next failure leaves the account waiting a second for
      // the second-oldest failure to leave the window.
      expect(await outcome(login(rotor, 'ada@example.com', 'wrong'))).toBe('invalid_credentials');
      expect(await outcome(login(rotor, 'ada@example.com', PASSWORD))).toBe('rate_limited 1s');
    });

    it('right passwords racing each other lock no one out: the places they held are free again at once', async () => {
      const { rotor } = await open();
      await rotor.register({ email: 'rush@example.com', password: PASSWORD });
      // Eight right passwords at once: five hold the five places, three are refused meanwhile.
      const rush = await Promise.all(
        Array.from({ length: 8 }, () => outcome(login(rotor, 'rush@example.com', PASSWORD))),
      );
      expect(rush.filter((r) => r === 'ok').length).toBeGreaterThanOrEqual(5);
      // Every place was given back: the next sign-in, and five wrong passwords, fit at once.
      expect(await outcome(login(rotor, 'rush@example.com', PASSWORD, '198.51.100.9'))).toBe('ok');
      for (let i = 0; i < 5; i += 1) {
        expect(await outcome(login(rotor, 'rush@example.com', 'wrong'))).toBe(
          'invalid_credentials',
        );
      }
    });

    it('a block is shared by every instance on the database', async () => {
      const a = await open();
      const b = await open({}, a.url, a.clock);
      await a.rotor.register({ email: 'eve@example.com', password: PASSWORD });
      for (let i = 0; i < 5; i += 1)
        await login(a.rotor, 'eve@example.com', 'wrong').catch(() => {});
      expect(await outcome(login(b.rotor, 'eve@example.com', PASSWORD))).toBe('rate_limited 900s');
    });

    it('failed logins per address: 50 across accounts pass, then the address waits; other addresses and honest successes do not', async () => {
      const { rotor } = await open();
      await rotor.register({ email: 'nat@example.com', password: PASSWORD });
      const office = '192.0.2.10';
      // Honest users behind one NAT: successes never count against the address.
      for (let i = 0; i < 55; i += 1) await login(rotor, 'nat@example.com', PASSWORD, office);
      const failures = [];
      for (let i = 0; i < 50; i += 1) {
        failures.push(await outcome(login(rotor, `nobody${i}@example.com`, 'guess', office)));
      }
      expect(failures).toEqual(Array(50).fill('invalid_credentials'));
      expect(await outcome(login(rotor, 'nat@example.com', PASSWORD, office))).toBe(
        'rate_limited 900s',
      );
      expect(await outcome(login(rotor, 'nat@example.com', PASSWORD, '192.0.2.11'))).toBe('ok');
    }, 30_000);

    it('register: 30 per 5 minutes per address over HTTP; the CLI (no address) is not limited', async () => {
      const { rotor, clock } = await open();
      const ip = '203.0.113.9';
      const results = [];
      for (let i = 0; i < 31; i += 1) {
        results.push(
          await outcome(
            rotor.register({ email: `r${i}@example.com`, password: PASSWORD, ip, userAgent: null }),
          ),
        );
      }
      expect(results.slice(0, 30)).toEqual(Array(30).fill('ok'));
      expect(results[30]).toBe('rate_limited 300s');
      expect(await outcome(rotor.register({ email: 'cli@example.com', password: PASSWORD }))).toBe(
        'ok',
      );
      clock.advance(300 * SECOND);
      expect(
        await outcome(
          rotor.register({ email: 'late@example.com', password: PASSWORD, ip, userAgent: null }),
        ),
      ).toBe('ok');
    }, 30_000);

    it('refresh: 30 rotations of one session per minute; the 31st is refused with nothing changed, and its token works after the block', async () => {
      const { rotor, clock } = await open();
      await rotor.register({ email: 'loop@example.com', password: PASSWORD });
      let token = (await login(rotor, 'loop@example.com', PASSWORD)).refreshToken;
      const refresh = (refreshToken: string) =>
        rotor.refresh({ refreshToken, ip: '203.0.113.7', userAgent: 'vitest' });
      for (let i = 0; i < 30; i += 1) token = (await refresh(token)).refreshToken;
      expect(await outcome(refresh(token))).toBe('rate_limited 60s');
      clock.advance(60 * SECOND);
      const next = await refresh(token);
      expect(next.rotated).toBe(true);
      // Another session of the same user is not affected.
      const other = await login(rotor, 'loop@example.com', PASSWORD);
      expect(await outcome(refresh(other.refreshToken))).toBe('ok');
    });

    it('only failed look-ups are limited per address: after 60 unknown refresh tokens from an address, a valid one from it still refreshes', async () => {
      const { rotor } = await open();
      await rotor.register({ email: 'neighbour@example.com', password: PASSWORD });
      const valid = (await login(rotor, 'neighbour@example.com', PASSWORD)).refreshToken;
      const ip = '203.0.113.80';
      const refresh = (refreshToken: string) =>
        rotor.refresh({ refreshToken, ip, userAgent: 'vitest' });
      const guesses = await Promise.all(
        Array.from({ length: 61 }, () => outcome(refresh(randomBytes(32).toString('base64url')))),
      );
      expect(guesses.filter((g) => g === 'invalid_token')).toHaveLength(60);
      expect(guesses.filter((g) => g.startsWith('rate_limited'))).toHaveLength(1);
      expect(await outcome(refresh(valid))).toBe('ok');
      expect(await outcome(refresh(randomBytes(32).toString('base64url')))).toMatch(
        /^rate_limited/,
      );
    });

    it("grace-window replays count against the session's refresh budget", async () => {
      const { rotor } = await open();
      await rotor.register({ email: 'replay@example.com', password: PASSWORD });
      const first = (await login(rotor, 'replay@example.com', PASSWORD)).refreshToken;
      const refresh = () =>
        rotor.refresh({ refreshToken: first, ip: '203.0.113.81', userAgent: 'vitest' });
      expect(await outcome(refresh())).toBe('ok');
      // 150 replays of the rotated token at once, inside the grace window: each would be a new
      // access token. The budget is 30 per minute, the first rotation included.
      const replays = await Promise.all(Array.from({ length: 150 }, () => outcome(refresh())));
      expect(replays.filter((r) => r === 'ok')).toHaveLength(29);
      expect(replays.filter((r) => r.startsWith('rate_limited'))).toHaveLength(121);
    });

    it('ROTOR_RATE_LIMIT_LOGIN sets the account budget', async () => {
      const { rotor } = await open({ ROTOR_RATE_LIMIT_LOGIN: '2/1m' });
      await rotor.register({ email: 'two@example.com', password: PASSWORD });
      const results = [];
      for (let i = 0; i < 2; i += 1)
        results.push(await outcome(login(rotor, 'two@example.com', 'wrong')));
      expect(results).toEqual(Array(2).fill('invalid_credentials'));
      expect(await outcome(login(rotor, 'two@example.com', PASSWORD))).toBe('rate_limited 60s');
    });

    it('ROTOR_RATE_LIMIT=off switches every limit off', async () => {
      const { rotor } = await open({ ROTOR_RATE_LIMIT: 'off' });
      await rotor.register({ email: 'off@example.com', password: PASSWORD });
      for (let i = 0; i < 8; i += 1) await login(rotor, 'off@example.com', 'wrong').catch(() => {});
      expect(await outcome(login(rotor, 'off@example.com', PASSWORD))).toBe('ok');
    });
  });
}

describe('rate limits over HTTP', () => {
  it('answer 429 rate_limited with Retry-After and the JSON error shape', async () => {
    const config = loadConfig({ ROTOR_DATABASE_URL: await newDatabaseUrl('sqlite', dir) });
    const app = await createServer(config, { logger: false });
    try {
      const post = (body: object) =>
        app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: body,
          remoteAddress: '203.0.113.50',
        });
      await app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email: 'h@example.com', password: PASSWORD },
      });
      for (let i = 0; i < LIMITS.loginAccount.limit; i += 1) {
        expect(
          (await post({ email: 'h@example.com', password: 'wrong password' })).statusCode,
        ).toBe(401);
      }
      const refused = await post({ email: 'h@example.com', password: PASSWORD });
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(890);
      expect(refused.json()).toEqual({
        error: 'rate_limited',
        message: expect.stringMatching(/try again in \d+ s/),
      });
    } finally {
      await app.close();
    }
  });
});
