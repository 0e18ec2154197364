import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseDuration } from '@rotor/server';

describe('configuration', () => {
  it('parses durations: 30s, 15m, 12h, 7d and bare seconds', () => {
    expect(parseDuration('30s')).toBe(30);
    expect(parseDuration('15m')).toBe(900);
    expect(parseDuration('12h')).toBe(43_200);
    expect(parseDuration('7d')).toBe(604_800);
    expect(parseDuration('45')).toBe(45);
    for (const bad of ['', 'soon', '-5', '1.5m', '10w', '15 minutes'])
      expect(parseDuration(bad)).toBeUndefined();
  });

  it('has the defaults of API.md', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 3000,
      databaseUrl: 'sqlite:./rotor.db',
      accessTtl: 900,
      refreshTtl: 604_800,
      sessionMaxAge: 2_592_000,
      refreshGrace: 10,
      issuer: 'http://127.0.0.1:3000',
      audience: 'rotor',
      cookieSecure: true,
      rateLimit: true,
    });
    expect(config.allowedOrigins).toContain('http://127.0.0.1:3000');
  });

  it.each([
    ['ROTOR_PORT', 'eighty'],
    ['ROTOR_PORT', '70000'],
    ['ROTOR_ACCESS_TTL', '0'],
    ['ROTOR_REFRESH_TTL', 'forever'],
    ['ROTOR_SESSION_MAX_AGE', '-1'],
    ['ROTOR_REFRESH_GRACE', '10 s'],
    ['ROTOR_COOKIE_SECURE', 'maybe'],
    ['ROTOR_RATE_LIMIT', 'sometimes'],
    ['ROTOR_ALLOWED_ORIGINS', 'https://app.example.com/path'],
    ['ROTOR_ALLOWED_ORIGINS', 'not a url'],
    ['ROTOR_DATABASE_URL', 'mysql://localhost/rotor'],
    ['ROTOR_SECRET', 'too short'],
    ['ROTOR_LOG_LEVEL', 'loud'],
    ['ROTOR_OAUTH_CLIENTS', '{"id":"x"}'],
    ['ROTOR_OAUTH_CLIENTS', '[{"id":"a"},{"id":"a"}]'],
    ['ROTOR_OAUTH_CLIENTS', '[{"id":"api","secret":"short"}]'],
    ['ROTOR_OAUTH_CLIENTS', 'not json'],
    ['ROTOR_DATABASE_POOL_SIZE', '0'],
    ['ROTOR_RETENTION', 'a while'],
    ['ROTOR_AUDIT_RETENTION', 'forever'],
    ['ROTOR_REDIS_URL', 'localhost:6379'],
    ['ROTOR_METRICS_TOKEN', 'short'],
    ['ROTOR_RATE_LIMIT_LOGIN', '5'],
    ['ROTOR_RATE_LIMIT_LOGIN', '0/15m'],
    ['ROTOR_RATE_LIMIT_REGISTER', '30 per 5m'],
    ['ROTOR_RATE_LIMIT_REFRESH', '30/never'],
  ])('refuses %s=%s with an error naming the variable', (name, value) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(name);
    expect((error as Error).message).toContain(name);
  });

  it('refuses ROTOR_ACCESS_TTL longer than ROTOR_REFRESH_TTL, naming both; equal is accepted', () => {
    let error: unknown;
    try {
      loadConfig({ ROTOR_ACCESS_TTL: '2h', ROTOR_REFRESH_TTL: '1h' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('ROTOR_ACCESS_TTL');
    expect((error as Error).message).toContain('ROTOR_REFRESH_TTL');
    // The default refresh lifetime (7 d) is not the limit when only the access one is set short.
    expect(() => loadConfig({ ROTOR_ACCESS_TTL: '8d' })).toThrow(ConfigError);
    expect(loadConfig({ ROTOR_ACCESS_TTL: '1h', ROTOR_REFRESH_TTL: '1h' })).toMatchObject({
      accessTtl: 3600,
      refreshTtl: 3600,
    });
  });

  it('reads rate-limit budgets as N/duration, keeping the blocks of each rule', () => {
    const config = loadConfig({
      ROTOR_RATE_LIMIT_LOGIN: '10/1h',
      ROTOR_RATE_LIMIT_REGISTER: '100/60',
      ROTOR_REDIS_URL: 'redis://cache.internal:6379',
    });
    expect(config.rateLimits.loginAccount).toMatchObject({ limit: 10, windowMs: 3_600_000 });
    expect(config.rateLimits.register).toMatchObject({ limit: 100, windowMs: 60_000 });
    expect(config.rateLimits.loginAddress).toMatchObject({ limit: 50, windowMs: 900_000 });
    expect(config.redisUrl).toBe('redis://cache.internal:6379');
  });

  it('accepts 0 to disable the maximum lifetime and the grace window, and lists of origins', () => {
    const config = loadConfig({
      ROTOR_SESSION_MAX_AGE: '0',
      ROTOR_REFRESH_GRACE: '0',
      ROTOR_ALLOWED_ORIGINS: 'https://app.example.com, http://localhost:5173',
    });
    expect(config.sessionMaxAge).toBe(0);
    expect(config.refreshGrace).toBe(0);
    expect(config.allowedOrigins).toEqual(['https://app.example.com', 'http://localhost:5173']);
  });
});
