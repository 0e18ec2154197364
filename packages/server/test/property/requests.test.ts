import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login, registerUser, startTestServer, tempDir } from '../helpers.js';

/** Random requests, shaped like real ones and like garbage, must never get a 5xx. */
const { dir, cleanup } = tempDir();
let app: FastifyInstance;
let realAccess: string;
let realRefresh: string;

beforeAll(async () => {
  ({ app } = await startTestServer(dir, { ROTOR_RATE_LIMIT: 'off' }));
  const email = await registerUser(app);
  const { body } = await login(app, email);
  realAccess = body.accessToken!;
  realRefresh = body.refreshToken!;
});
afterAll(async () => {
  await app?.close();
  cleanup();
});

const paths = fc.oneof(
  fc.constantFrom(
    '/auth/register',
    '/auth/login',
    '/auth/refresh',
    '/auth/logout',
    '/auth/logout-all',
    '/auth/password',
    '/auth/me',
    '/auth/events',
    '/auth/sessions',
    '/auth/sessions/x',
    '/.well-known/jwks.json',
    '/oauth/token',
    '/oauth/revoke',
    '/oauth/introspect',
    '/healthz',
    '/readyz',
    '/',
  ),
  fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
  fc.string().map((s) => `/auth/${encodeURIComponent(s)}`),
);

const tokenish = () =>
  fc.oneof(
    fc.constant(realAccess),
    fc.constant(realRefresh),
    fc.string(),
    fc.base64String(),
    fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map((p) => p.join('.')),
  );

const bodies = fc.oneof(
  fc.constant(undefined),
  fc.json(),
  fc.string(),
  fc.record(
    {
      email: fc.oneof(fc.emailAddress(), fc.string(), fc.integer()),
      password: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
      name: fc.oneof(fc.string(), fc.constant(null), fc.object()),
      deviceName: fc.oneof(fc.string(), fc.boolean()),
      refreshToken: fc.oneof(tokenish(), fc.integer()),
      currentPassword: fc.string(),
      newPassword: fc.string(),
      grant_type: fc.string(),
    },
    { requiredKeys: [] },
  ),
);

const headers = fc.record(
  {
    'content-type': fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      '',
    ),
    authorization: fc.oneof(
      tokenish().map((t) => `Bearer ${t}`),
      fc.string(),
      fc.constant('Bearer'),
      fc.constant('Basic Zm9vOmJhcg=='),
    ),
    cookie: fc.oneof(
      tokenish().map((t) => `rotor_access=${t}`),
      tokenish().map((t) => `rotor_refresh=${t}`),
      fc.string(),
    ),
    origin: fc.oneof(fc.webUrl(), fc.string(), fc.constant('null')),
    'token-delivery': fc.oneof(fc.constantFrom('split', 'cookies', 'body'), fc.string()),
    'sec-fetch-site': fc.constantFrom('same-origin', 'cross-site', 'none', 'same-site'),
  },
  { requiredKeys: [] },
);

describe('random requests (fast-check)', () => {
  it('never get a 5xx, and every error has the JSON shape of API.md', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD'),
        paths,
        headers,
        bodies,
        async (method, url, requestHeaders, body) => {
          const payload =
            body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
          const response = await app.inject({
            method: method as 'GET',
            url,
            headers: requestHeaders,
            ...(payload !== undefined && method !== 'GET' && method !== 'HEAD' && { payload }),
          });
          expect(response.statusCode, `${method} ${url} → ${response.body}`).toBeLessThan(500);
          if (response.statusCode >= 400 && method !== 'HEAD' && response.statusCode !== 431) {
            const error = response.json() as { error?: unknown; message?: unknown };
            expect(typeof error.error).toBe('string');
            expect(typeof error.message).toBe('string');
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
