import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRotor, createServer, loadConfig, type Rotor } from '@rotor/server';
import { findRedisServer, freePort, startRedis, type RedisServer } from '@rotor/testkit';
import { dpopKey } from './dpop-kit.js';
import { codeOf, newDatabaseUrl, PASSWORD, tempDir } from './helpers.js';

const REDIS = findRedisServer();
if (!REDIS && process.env.CI === 'true') {
  throw new Error('redis-server is missing (apt-get install redis-server); CI runs every test');
}

const { dir, cleanup } = tempDir();
let redis: RedisServer | undefined;
let url = '';

beforeAll(async () => {
  if (!REDIS) return;
  redis = await startRedis(REDIS);
  url = redis.url;
});
afterAll(() => {
  redis?.stop();
  cleanup();
});

describe.skipIf(!REDIS)('rate limits in Redis (ROTOR_REDIS_URL)', () => {
  const opened: Rotor[] = [];
  afterAll(async () => {
    for (const rotor of opened) await rotor.close();
  });
  /** An instance on a database of its own: whatever they share, they share through Redis. */
  async function instance(email: string) {
    const rotor = await createRotor(
      loadConfig({ ROTOR_DATABASE_URL: await newDatabaseUrl('sqlite', dir), ROTOR_REDIS_URL: url }),
    );
    opened.push(rotor);
    await rotor.register({ email, password: PASSWORD });
    return rotor;
  }
  const login = (rotor: Rotor, password: string, email = 'ada@example.com') =>
    rotor.login({
      email,
      password,
      deviceName: null,
      delivery: 'body',
      ip: '203.0.113.1',
      userAgent: 'vitest',
    });

  it('a DPoP proof accepted on one instance is a replay on another that shares only Redis (issue 18)', async () => {
    const [a, b] = [await instance('dpop-a@example.com'), await instance('dpop-b@example.com')];
    const key = await dpopKey();
    const htu = `${a.config.issuer}/auth/refresh`;
    const request = { method: 'POST', urls: [htu] };
    const proof = await key.proof('POST', htu);
    expect((await a.dpop.check(proof, request))?.jkt).toBe(key.jkt);
    expect(await codeOf(b.dpop.check(proof, request))).toBe('invalid_dpop_proof');
    // Twenty sends of one new proof at once, across both: exactly one is accepted.
    const raced = await key.proof('POST', htu);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => [a, b][i % 2]!.dpop.check(raced, request)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const keys = spawnSync('redis-cli', ['-u', url, '--scan', '--pattern', 'rotor:dpop:*'], {
      encoding: 'utf8',
    }).stdout;
    expect(keys.trim().split('\n')).toHaveLength(2);
  });

  it('a block earned on one instance holds on another that shares only Redis', async () => {
    const [a, b] = [await instance('ada@example.com'), await instance('ada@example.com')];
    for (let i = 0; i < 5; i += 1)
      expect(await codeOf(login(a, 'wrong password'))).toBe('invalid_credentials');
    expect(await codeOf(login(b, PASSWORD))).toBe('rate_limited');
    const keys = spawnSync('redis-cli', ['-u', url, '--scan', '--pattern', 'rotor:limit:*'], {
      encoding: 'utf8',
    }).stdout;
    // Subjects are hashed: no email or address in Redis.
    expect(keys).toMatch(/rotor:limit:login-account:/);
    expect(keys).not.toMatch(/ada|203\.0\.113/);
  });

  it('a budget of 5 admits at most 5 wrong passwords, whatever the concurrency, across instances sharing only Redis', async () => {
    const email = 'bob@example.com';
    const instances = [await instance(email), await instance(email), await instance(email)];
    // 44 wrong guesses and the right password among them, all at once, over three instances.
    const right = Math.floor(Math.random() * 45);
    const results = await Promise.all(
      Array.from({ length: 45 }, (_, i) =>
        codeOf(login(instances[i % 3]!, i === right ? PASSWORD : 'wrong password', email)),
      ),
    );
    // The right password gives its place back, so at most 5 wrong guesses and the right one.
    expect(results.filter((r) => r === 'invalid_credentials').length).toBeLessThanOrEqual(5);
    expect(results.filter((r) => r === 'ok').length).toBeLessThanOrEqual(1);
    expect(results.filter((r) => r === 'rate_limited').length).toBeGreaterThanOrEqual(39);
    expect(results.every((r) => ['ok', 'invalid_credentials', 'rate_limited'].includes(r))).toBe(
      true,
    );
  });
});

describe('rate limits in Redis, with Redis gone', () => {
  it('a login answers 503 unavailable, not 500 and not unlimited', async () => {
    const closed = `redis://127.0.0.1:${await freePort()}`;
    const app = await createServer(
      loadConfig({
        ROTOR_DATABASE_URL: await newDatabaseUrl('sqlite', dir),
        ROTOR_REDIS_URL: closed,
      }),
      { logger: false },
    );
    try {
      const response = await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: 'ada@example.com', password: PASSWORD },
      });
      expect(response.statusCode).toBe(503);
      expect(response.json().error).toBe('unavailable');
    } finally {
      await app.close();
    }
  });
});
