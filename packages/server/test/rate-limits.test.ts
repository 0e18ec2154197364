import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  addEvent,
  createRotor,
  createServer,
  LIMITS,
  loadConfig,
  ManualClock,
  RateLimitedError,
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

describe('the sliding window', () => {
  const rule = {
    name: 't',
    limit: 3,
    windowMs: MINUTE,
    blockMs: 10 * SECOND,
    maxBlockMs: 35 * SECOND,
  };
  const empty: LimitState = { windowStart: 0, count: 0, prevCount: 0, blockedUntil: 0, strikes: 0 };

  it('allows the limit, blocks the next event, then a full budget; each breach doubles the block up to the cap', () => {
    const t0 = 10 * MINUTE;
    /** Adds `n` events at `at`; the breaches seen. */
    const burst = (from: LimitState, at: number, n: number) => {
      let state = from;
      const breaches: boolean[] = [];
      for (let i = 0; i < n; i += 1) {
        const next = addEvent(state, rule, at);
        breaches.push(next.breached);
        state = next.state;
      }
      return { state, breaches };
    };
    const first = burst(empty, t0, 4);
    expect(first.breaches).toEqual([false, false, false, true]);
    expect(first.state.blockedUntil - t0).toBe(10 * SECOND);
    const second = burst(first.state, first.state.blockedUntil, 4);
    expect(second.breaches).toEqual([false, false, false, true]);
    expect(second.state.blockedUntil - first.state.blockedUntil).toBe(20 * SECOND);
    const third = burst(second.state, second.state.blockedUntil, 4);
    expect(third.state.blockedUntil - second.state.blockedUntil).toBe(35 * SECOND); // capped
  });

  it('weights the previous window by its overlap, and a quiet window forgives', () => {
    let state = empty;
    const t0 = 10 * MINUTE;
    for (let i = 0; i < 3; i += 1) state = addEvent(state, rule, t0 + i).state;
    // Half-way into the next window, the 3 earlier events weigh 1.5: one more fits, two do not.
    const half = t0 + MINUTE + MINUTE / 2;
    const one = addEvent(state, rule, half);
    expect(one.breached).toBe(false);
    expect(addEvent(one.state, rule, half + 1).breached).toBe(true);
    // Two windows later, and a window after the last block, nothing is remembered.
    const later = addEvent({ ...state, strikes: 3, blockedUntil: t0 }, rule, t0 + 2 * MINUTE);
    expect(later.breached).toBe(false);
    expect(later.state.strikes).toBe(0);
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
      const rotor = await createRotor(loadConfig({ ROTOR_DATABASE_URL: databaseUrl, ...env }), {
        clock: time,
      });
      opened.push(rotor);
      return { rotor, clock: time, url: databaseUrl };
    }
    const login = (rotor: Rotor, email: string, password: string, ip = '203.0.113.7') =>
      rotor.login({ email, password, deviceName: null, delivery: 'body', ip, userAgent: 'vitest' });

    it('five wrong passwords pass; the sixth blocks the account for 30 s, even with the right password; a success then clears it', async () => {
      const { rotor, clock } = await open();
      await rotor.register({ email: 'ada@example.com', password: PASSWORD });
      const results = [];
      for (let i = 0; i < 6; i += 1)
        results.push(await outcome(login(rotor, 'ada@example.com', 'wrong password')));
      expect(results).toEqual(Array(6).fill('invalid_credentials'));
      // Another spelling of the same account, from another address: still blocked.
      expect(await outcome(login(rotor, ' ADA@example.com', PASSWORD, '198.51.100.1'))).toBe(
        'rate_limited 30s',
      );
      clock.advance(30 * SECOND);
      expect(await outcome(login(rotor, 'ada@example.com', PASSWORD))).toBe('ok');
      // The success cleared the failures: five more wrong passwords are allowed again.
      for (let i = 0; i < 5; i += 1) await login(rotor, 'ada@example.com', 'wrong').catch(() => {});
      expect(await outcome(login(rotor, 'ada@example.com', PASSWORD))).toBe('ok');
    });

    it('each further breach doubles the block (exponential backoff)', async () => {
      const { rotor, clock } = await open();
      await rotor.register({ email: 'bob@example.com', password: PASSWORD });
      for (let i = 0; i < 6; i += 1) await login(rotor, 'bob@example.com', 'wrong').catch(() => {});
      clock.advance(30 * SECOND);
      // After the block a full budget is back; spending it again blocks twice as long.
      const again = [];
      for (let i = 0; i < 6; i += 1)
        again.push(await outcome(login(rotor, 'bob@example.com', 'wrong')));
      expect(again).toEqual(Array(6).fill('invalid_credentials'));
      expect(await outcome(login(rotor, 'bob@example.com', PASSWORD))).toBe('rate_limited 60s');
    });

    it('a block is shared by every instance on the database', async () => {
      const a = await open();
      const b = await open({}, a.url, a.clock);
      await a.rotor.register({ email: 'eve@example.com', password: PASSWORD });
      for (let i = 0; i < 6; i += 1)
        await login(a.rotor, 'eve@example.com', 'wrong').catch(() => {});
      expect(await outcome(login(b.rotor, 'eve@example.com', PASSWORD))).toBe('rate_limited 30s');
    });

    it('failed logins per address: 50 across accounts pass, then the address waits; other addresses and honest successes do not', async () => {
      const { rotor } = await open();
      await rotor.register({ email: 'nat@example.com', password: PASSWORD });
      const office = '192.0.2.10';
      // Honest users behind one NAT: successes never count against the address.
      for (let i = 0; i < 55; i += 1) await login(rotor, 'nat@example.com', PASSWORD, office);
      const failures = [];
      for (let i = 0; i < 51; i += 1) {
        failures.push(await outcome(login(rotor, `nobody${i}@example.com`, 'guess', office)));
      }
      expect(failures).toEqual(Array(51).fill('invalid_credentials'));
      expect(await outcome(login(rotor, 'nat@example.com', PASSWORD, office))).toBe(
        'rate_limited 60s',
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
      expect(results[30]).toBe('rate_limited 60s');
      expect(await outcome(rotor.register({ email: 'cli@example.com', password: PASSWORD }))).toBe(
        'ok',
      );
      clock.advance(60 * SECOND);
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
      // Grace-window racers get the successor already issued and are not counted.
      expect(await outcome(refresh(token))).toBe('rate_limited 30s');
      clock.advance(30 * SECOND);
      const next = await refresh(token);
      expect(next.rotated).toBe(true);
      // Another session of the same user is not affected.
      const other = await login(rotor, 'loop@example.com', PASSWORD);
      expect(await outcome(refresh(other.refreshToken))).toBe('ok');
    });

    it('ROTOR_RATE_LIMIT_LOGIN sets the account budget', async () => {
      const { rotor } = await open({ ROTOR_RATE_LIMIT_LOGIN: '2/1m' });
      await rotor.register({ email: 'two@example.com', password: PASSWORD });
      const results = [];
      for (let i = 0; i < 3; i += 1)
        results.push(await outcome(login(rotor, 'two@example.com', 'wrong')));
      expect(results).toEqual(Array(3).fill('invalid_credentials'));
      expect(await outcome(login(rotor, 'two@example.com', PASSWORD))).toBe('rate_limited 30s');
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
      for (let i = 0; i < LIMITS.loginAccount.limit + 1; i += 1) {
        expect(
          (await post({ email: 'h@example.com', password: 'wrong password' })).statusCode,
        ).toBe(401);
      }
      const refused = await post({ email: 'h@example.com', password: PASSWORD });
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['retry-after']).toBe('30');
      expect(refused.json()).toEqual({
        error: 'rate_limited',
        message: expect.stringMatching(/30 s/),
      });
    } finally {
      await app.close();
    }
  });
});
