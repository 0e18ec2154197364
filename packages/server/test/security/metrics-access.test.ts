import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, tempDir } from '../helpers.js';

const { dir, cleanup } = tempDir();
let open: FastifyInstance;
let proxied: FastifyInstance;
let guarded: FastifyInstance;
const TOKEN = 'scrape-me-if-you-can-0123';

beforeAll(async () => {
  ({ app: open } = await startTestServer(dir));
  ({ app: proxied } = await startTestServer(dir, { ROTOR_TRUST_PROXY: '127.0.0.1' }));
  ({ app: guarded } = await startTestServer(dir, { ROTOR_METRICS_TOKEN: TOKEN }));
});
afterAll(async () => {
  await Promise.all([open?.close(), proxied?.close(), guarded?.close()]);
  cleanup();
});

const scrape = (
  app: FastifyInstance,
  remoteAddress: string,
  headers: Record<string, string> = {},
) => app.inject({ method: 'GET', url: '/metrics', remoteAddress, headers });

describe('GET /metrics without ROTOR_METRICS_TOKEN answers loopback clients only', () => {
  it('a client off loopback gets 403 forbidden, told to set ROTOR_METRICS_TOKEN', async () => {
    for (const address of ['203.0.113.5', '10.0.0.1', '::ffff:203.0.113.5', '2001:db8::1']) {
      const response = await scrape(open, address);
      expect([response.statusCode, response.json().error]).toEqual([403, 'forbidden']);
      expect(response.json().message).toContain('ROTOR_METRICS_TOKEN');
      expect(response.body).not.toContain('rotor_logins_total');
    }
  });

  it('loopback clients read the metrics: 127.0.0.0/8, ::1 and ::ffff:127.x', async () => {
    for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) {
      const response = await scrape(open, address);
      expect(response.statusCode).toBe(200);
      expect(response.body).toContain('rotor_logins_total');
    }
  });

  it('a forged X-Forwarded-For naming loopback does not open it when no proxy is trusted', async () => {
    const response = await scrape(open, '203.0.113.5', { 'x-forwarded-for': '127.0.0.1' });
    expect(response.statusCode).toBe(403);
  });

  it('behind a trusted proxy the real client is judged, over HTTP', async () => {
    const base = await proxied.listen({ host: '127.0.0.1', port: 0 });
    const outsider = await fetch(`${base}/metrics`, {
      headers: { 'x-forwarded-for': '127.0.0.1, 203.0.113.5' },
    });
    expect(outsider.status).toBe(403);
    expect(((await outsider.json()) as { error: string }).error).toBe('forbidden');
    const local = await fetch(`${base}/metrics`, { headers: { 'x-forwarded-for': '127.0.0.1' } });
    expect(local.status).toBe(200);
  });

  it('behind a local trusted proxy, an entry that is no plain address never makes the client the proxy', async () => {
    const base = await proxied.listen({ host: '127.0.0.1', port: 0 }).catch(() => undefined);
    const url = base ?? `http://127.0.0.1:${(proxied.server.address() as { port: number }).port}`;
    // Found by the attack review: each of these read /metrics as the loopback proxy itself.
    for (const entry of [
      '203.0.113.5:51234',
      '[2001:db8::1]:443',
      'unknown',
      '',
      '127.1',
      '2130706433',
    ]) {
      const answer = await fetch(`${url}/metrics`, { headers: { 'x-forwarded-for': entry } });
      expect([entry, answer.status]).toEqual([entry, 403]);
    }
  });
});

describe('GET /metrics with ROTOR_METRICS_TOKEN', () => {
  it('answers whoever sends the token, from any address; without it 401 as before', async () => {
    const right = await scrape(guarded, '203.0.113.5', { authorization: `Bearer ${TOKEN}` });
    expect(right.statusCode).toBe(200);
    expect(right.body).toContain('rotor_logins_total');
    const none = await scrape(guarded, '127.0.0.1');
    expect([none.statusCode, none.json().error]).toEqual([401, 'missing_token']);
    const wrong = await scrape(guarded, '203.0.113.5', { authorization: 'Bearer not-the-token' });
    expect([wrong.statusCode, wrong.json().error]).toEqual([401, 'invalid_token']);
  });
});
