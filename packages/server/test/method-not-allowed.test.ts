import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, tempDir } from './helpers.js';

const { dir, cleanup } = tempDir();
let app: FastifyInstance;

beforeAll(async () => {
  ({ app } = await startTestServer(dir));
});
afterAll(async () => {
  await app.close();
  cleanup();
});

describe('a wrong method on a known path', () => {
  it('GET /auth/login answers 405 method_not_allowed with Allow: POST in the JSON error shape', async () => {
    const response = await app.inject({ method: 'GET', url: '/auth/login?next=x' });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('POST');
    expect(response.headers['content-type']).toContain('application/json');
    expect(response.headers['x-request-id']).toBeDefined();
    const body = response.json() as { error: string; message: string };
    expect(body.error).toBe('method_not_allowed');
    expect(body.message).toContain('POST');
  });

  it('a path with a parameter lists the methods of its route, HEAD beside GET as Fastify serves it', async () => {
    const one = await app.inject({
      method: 'POST',
      url: '/auth/sessions/00000000-0000-4000-8000-000000000000',
    });
    expect(one.statusCode).toBe(405);
    expect(one.headers.allow).toBe('DELETE');
    const list = await app.inject({ method: 'DELETE', url: '/auth/sessions' });
    expect(list.statusCode).toBe(405);
    expect(list.headers.allow).toBe('GET, HEAD');
    // Fastify's HEAD for a GET route still answers as before.
    expect((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode).toBe(200);
  });

  it('an unknown path is still 404 not_found without Allow; a preflight is still 204', async () => {
    const unknown = await app.inject({ method: 'GET', url: '/auth/nope' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers.allow).toBeUndefined();
    expect(unknown.json()).toMatchObject({ error: 'not_found' });
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/auth/login',
      headers: { origin: 'http://127.0.0.1:3000', 'access-control-request-method': 'POST' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-methods']).toBe('GET, POST, DELETE');
  });

  it('the known paths come from the registered routes: a route added later is known too', async () => {
    const { app: other } = await startTestServer(dir);
    try {
      other.put('/added-later', async () => ({}));
      await other.ready();
      const response = await other.inject({ method: 'GET', url: '/added-later' });
      expect(response.statusCode).toBe(405);
      expect(response.headers.allow).toBe('PUT');
    } finally {
      await other.close();
    }
  });
});
