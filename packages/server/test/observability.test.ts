import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManualClock } from '@rotor/server';
import { login, PASSWORD, registerUser, startTestServer, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir();
let app: FastifyInstance;
let clock: ManualClock;
let base: string;

beforeAll(async () => {
  ({ app, clock } = await startTestServer(dir, { ROTOR_REFRESH_GRACE: '0' }));
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app?.close();
  cleanup();
});

/** One sample of the Prometheus text format, by metric name and exact label set. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('GET /metrics', () => {
  it('counts logins, refreshes and re-use, the active sessions, and request durations by route template', async () => {
    const email = await registerUser(app);
    const post = (path: string, payload: object, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(payload),
      });
    expect((await post('/auth/login', { email, password: 'wrong password' })).status).toBe(401);
    const tokens = (await login(app, email)).body;
    await login(app, email);
    const refreshed = await post('/auth/refresh', { refreshToken: tokens.refreshToken });
    expect(refreshed.status).toBe(200);
    const reused = await post('/auth/refresh', { refreshToken: tokens.refreshToken });
    expect(((await reused.json()) as { error: string }).error).toBe('refresh_token_reused');
    const sessions = await fetch(`${base}/auth/sessions/not-a-session`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${(await login(app, email)).body.accessToken}` },
    });
    expect(sessions.status).toBe(404);

    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(sample(text, 'rotor_logins_total', '{result="failed"}')).toBe(1);
    // The logins made through app.inject count too: the hook sees every request.
    expect(sample(text, 'rotor_logins_total', '{result="succeeded"}')).toBe(3);
    expect(sample(text, 'rotor_refreshes_total', '{result="ok"}')).toBe(1);
    expect(sample(text, 'rotor_refreshes_total', '{result="refresh_token_reused"}')).toBe(1);
    expect(sample(text, 'rotor_reuse_detected_total')).toBe(1);
    // Three sessions were created; re-use revoked one.
    expect(sample(text, 'rotor_active_sessions')).toBe(2);
    expect(
      sample(
        text,
        'rotor_http_request_duration_seconds_count',
        '{method="DELETE",route="/auth/sessions/:id",status="404"}',
      ),
    ).toBe(1);
    expect(sample(text, 'rotor_process_cpu_user_seconds_total')).toBeGreaterThan(0);

    // The active sessions are counted at most once a minute (a full count of the table).
    await login(app, email);
    const scrape = async () =>
      sample(await (await fetch(`${base}/metrics`)).text(), 'rotor_active_sessions');
    expect(await scrape()).toBe(2);
    clock.advance(60_000);
    expect(await scrape()).toBe(3);
  });
});

describe('GET /metrics with ROTOR_METRICS_TOKEN', () => {
  it('answers only the scraper that sends the token; anyone else gets a JSON 401', async () => {
    const token = 'scrape-me-if-you-can-0123';
    const { app: guarded } = await startTestServer(dir, { ROTOR_METRICS_TOKEN: token });
    try {
      const scrape = (authorization?: string) =>
        guarded.inject({
          method: 'GET',
          url: '/metrics',
          headers: authorization === undefined ? {} : { authorization },
        });
      const none = await scrape();
      expect([none.statusCode, none.json().error]).toEqual([401, 'missing_token']);
      const wrong = await scrape('Bearer scrape-me-if-you-can-0124');
      expect([wrong.statusCode, wrong.json().error]).toEqual([401, 'invalid_token']);
      expect(wrong.body).not.toContain('rotor_logins_total');
      const right = await scrape(`Bearer ${token}`);
      expect(right.statusCode).toBe(200);
      expect(right.body).toContain('rotor_logins_total');
    } finally {
      await guarded.close();
    }
  });
});

describe('GET /openapi.json and /docs', () => {
  it('is an OpenAPI 3 document of every endpoint, with request schemas and how to authenticate', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { security?: unknown; requestBody?: unknown }>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    const endpoints = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(endpoints).toEqual(
      expect.arrayContaining([
        'POST /auth/register',
        'POST /auth/login',
        'POST /auth/refresh',
        'POST /auth/logout',
        'POST /auth/logout-all',
        'POST /auth/password',
        'GET /auth/me',
        'GET /auth/sessions',
        'DELETE /auth/sessions/{id}',
        'GET /auth/events',
        'GET /.well-known/jwks.json',
        'GET /healthz',
        'GET /readyz',
        'POST /oauth/token',
      ]),
    );
    // Pages and scrapes are not API.
    expect(endpoints.filter((e) => /metrics|\/demo|rotor-client|^GET \/$|openapi/.test(e))).toEqual(
      [],
    );
    expect(doc.paths['/auth/login']!.post!.requestBody).toMatchObject({
      content: {
        // A password login, or a login ticket's redemption (issue 16).
        'application/json': {
          schema: { anyOf: [{ required: ['email', 'password'] }, { required: ['ticket'] }] },
        },
      },
    });
    expect(doc.paths['/auth/me']!.get!.security).toEqual([{ bearer: [] }, { accessCookie: [] }]);
    expect(doc.paths['/auth/login']!.post!.security).toBeUndefined();
  });

  it('/docs renders it', async () => {
    const page = await fetch(`${base}/docs`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/swagger/i);
  });
});

describe('security headers', () => {
  it.each([
    ['GET', '/healthz'],
    ['GET', '/no/such/route'],
    ['GET', '/auth/me'],
    ['POST', '/auth/login'],
    ['GET', '/metrics'],
    ['GET', '/openapi.json'],
    ['GET', '/docs'],
    ['GET', '/.well-known/jwks.json'],
  ])('are on every response: %s %s', async (method, path) => {
    const response = await fetch(`${base}${path}`, {
      method,
      ...(method === 'POST' && {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'x@example.com', password: PASSWORD }),
      }),
    });
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    if (path.startsWith('/auth/')) expect(response.headers.get('cache-control')).toBe('no-store');
  });
});
