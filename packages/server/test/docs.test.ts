import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createServer, ERROR_STATUS } from '@rotor/server';
import { tempDir, testConfig } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const { dir, cleanup } = tempDir();

/** Routes served but kept out of the OpenAPI document on purpose (not part of the auth API). */
const UNDOCUMENTED_IN_OPENAPI = ['GET /metrics', 'GET /openapi.json', 'GET /docs'];

/**
 * docs/api.md is the repository's HTTP reference (issue 14); these tests keep it true to what the
 * server serves: every route of `/openapi.json` is in it and nothing else is, and every error code
 * of the one error table is in its table and in docs/errors.md with the same status.
 */
describe('docs/api.md against the server', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createServer(await testConfig(dir), { logger: false });
  });
  afterAll(async () => {
    await app.close();
    cleanup();
  });

  it('names every route the server serves, and no route it does not', async () => {
    const openapi = (await app.inject({ url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    const served = new Set(
      Object.entries(openapi.paths).flatMap(([path, methods]) =>
        Object.keys(methods).map(
          (method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`,
        ),
      ),
    );
    const documented = new Set(
      [...read('docs/api.md').matchAll(/`(GET|POST|DELETE|PUT|PATCH) (\/[^`\s?]*)/g)].map(
        (m) => `${m[1]} ${m[2]}`,
      ),
    );
    expect([...served].filter((route) => !documented.has(route))).toEqual([]);
    const unknown = [...documented].filter(
      (route) => !served.has(route) && !UNDOCUMENTED_IN_OPENAPI.includes(route),
    );
    expect(unknown).toEqual([]);
    for (const hidden of UNDOCUMENTED_IN_OPENAPI) {
      const [method, url] = hidden.split(' ') as ['GET', string];
      expect((await app.inject({ method, url, remoteAddress: '127.0.0.1' })).statusCode).not.toBe(
        404,
      );
    }
  });

  it.each(['docs/api.md', 'docs/errors.md'])(
    '%s lists every error code with its status',
    (path) => {
      const text = read(path);
      const rows = new Map(
        [...text.matchAll(/^\| `(\w+)`\s*\| (\d{3})\s*\|/gm)].map((m) => [m[1]!, Number(m[2])]),
      );
      const expected = Object.entries(ERROR_STATUS);
      expect(expected.filter(([code, status]) => rows.get(code) !== status)).toEqual([]);
      expect([...rows.keys()].filter((code) => !(code in ERROR_STATUS))).toEqual([]);
    },
  );
});
