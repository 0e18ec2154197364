import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type KyselyStore } from '@rotor/server';
import type { FastifyInstance } from 'fastify';
import { DIALECTS, PASSWORD, tempDir, testConfig } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

async function post(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`[${dialect.name}] over real HTTP on loopback`, () => {
    let app: FastifyInstance;
    let base: string;
    beforeAll(async () => {
      // The refresh budget counts grace-window racers (issue 13, item 8); 50 at once are the
      // atomicity under test here, not a runaway client.
      const env = { ROTOR_RATE_LIMIT_REFRESH: '1000/1m' };
      app = await createServer(await testConfig(dir, env, dialect.name), { logger: false });
      base = await app.listen({ host: '127.0.0.1', port: 0 });
    });
    afterAll(() => app.close());

    it('50 concurrent refreshes of one token: all 200, exactly one successor, one live token', async () => {
      await post(base, '/auth/register', { email: 'race@example.com', password: PASSWORD });
      const login = await post(
        base,
        '/auth/login',
        { email: 'race@example.com', password: PASSWORD },
        { 'token-delivery': 'body' },
      );
      expect(login.status).toBe(200);

      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          post(base, '/auth/refresh', { refreshToken: login.body.refreshToken }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
      const successors = new Set(results.map((r) => r.body.refreshToken));
      expect(successors.size).toBe(1);
      expect(successors.has(login.body.refreshToken)).toBe(false);

      const live = await (app.rotor.store as KyselyStore).db
        .selectFrom('user_tokens')
        .select(['token_hash'])
        .where('session_id', '=', login.body.sessionId!)
        .where('rotated_at', 'is', null)
        .execute();
      expect(live).toHaveLength(1);

      // The one successor works, and every access token handed out authorizes.
      const next = await post(base, '/auth/refresh', { refreshToken: [...successors][0] });
      expect(next.status).toBe(200);
      const me = await fetch(`${base}/auth/me`, {
        headers: { authorization: `Bearer ${results[49]!.body.accessToken}` },
      });
      expect(me.status).toBe(200);
    });

    it('an oversized header is refused by the HTTP parser, not by a 500, in the JSON error shape', async () => {
      const response = await fetch(`${base}/auth/me`, {
        headers: { authorization: `Bearer ${'x'.repeat(20_000)}` },
      });
      expect(response.status).toBe(431);
      expect(await response.json()).toEqual({
        error: 'headers_too_large',
        message: expect.any(String),
      });
    });

    it('bytes that are not HTTP get 400 invalid_request in the JSON error shape', async () => {
      const { connect } = await import('node:net');
      const { port } = new URL(base);
      const answer = await new Promise<string>((resolve) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.write('NOT HTTP\r\n\r\n'));
        let text = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('close', () => resolve(text));
        socket.on('error', () => {});
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({
        error: 'invalid_request',
      });
    });
  });
}
