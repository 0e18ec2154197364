import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRotor, createServer, loadConfig, type Rotor } from '@rotor/server';
import { freePort } from '@rotor/testkit';
import { codeOf, newDatabaseUrl, PASSWORD, tempDir } from './helpers.js';

const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
if (!REDIS && process.env.CI === 'true') {
  throw new Error('redis-server is missing (apt-get install redis-server); CI runs every test');
}

const { dir, cleanup } = tempDir();
let redis: ChildProcess | undefined;
let url = '';

beforeAll(async () => {
  if (!REDIS) return;
  const port = await freePort();
  redis = spawn(
    REDIS,
    ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i += 1) {
    if (
      spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() ===
      'PONG'
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('redis-server did not start');
});
afterAll(() => {
  redis?.kill('SIGKILL');
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

  it('a block earned on one instance holds on another that shares only Redis', async () => {
    const [a, b] = [await instance('ada@example.com'), await instance('ada@example.com')];
    for (let i = 0; i < 6; i += 1)
      expect(await codeOf(login(a, 'wrong password'))).toBe('invalid_credentials');
    expect(await codeOf(login(b, PASSWORD))).toBe('rate_limited');
    const keys = spawnSync('redis-cli', ['-u', url, '--scan', '--pattern', 'rotor:limit:*'], {
      encoding: 'utf8',
    }).stdout;
    // Subjects are hashed: no email or address in Redis.
    expect(keys).toMatch(/rotor:limit:login-account:/);
    expect(keys).not.toMatch(/ada|203\.0\.113/);
  });

  it('concurrent failures from several instances are all counted (WATCH/MULTI retries)', async () => {
    const email = 'bob@example.com';
    const instances = [await instance(email), await instance(email), await instance(email)];
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        codeOf(login(instances[i % 3]!, 'wrong password', email)),
      ),
    );
    expect(results).toEqual(Array(6).fill('invalid_credentials'));
    expect(await codeOf(login(instances[0]!, PASSWORD, email))).toBe('rate_limited');
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
