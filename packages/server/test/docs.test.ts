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
const UNDOCUMENTED_IN_OPENAPI = [
  'GET /metrics',
  'GET /openapi.json',
  'GET /docs',
  // The development outbox's pages (issue 17): loopback only, not part of the auth API.
  'GET /dev/mailbox',
  'GET /dev/mailbox/messages',
];

/**
 * docs/api.md is the repository's HTTP reference (issue 14); these tests keep it true to what the
 * server serves: every route of `/openapi.json` is in it and nothing else is, and every error code
 * of the one error table is in its table and in docs/errors.md with the same status.
 */
describe('docs/api.md against the server', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // With the admin API (issue 16), so its routes are compared too.
    const config = await testConfig(dir, { ROTOR_ADMIN_TOKEN: 'a'.repeat(32) });
    app = await createServer(config, { logger: false });
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

  it('lists, per route, the success fields and error codes /openapi.json gives', async () => {
    const openapi = (await app.inject({ url: '/openapi.json' })).json() as OpenApi;
    const text = read('docs/api.md');
    const everyRoute = codesIn(/every route may answer ([^.]+)\./.exec(text)?.[1] ?? '');
    expect(everyRoute.length).toBeGreaterThan(0);
    const documented = new Map(
      [...text.matchAll(/^- `(GET|POST|DELETE) (\S+)` → (.+);\n {2}errors: (.+)\.$/gm)].map((m) => [
        `${m[1]} ${m[2]}`,
        { success: successesIn(m[3]!), errors: [...codesIn(m[4]!), ...everyRoute].sort() },
      ]),
    );
    const served = new Map<string, { success: string[]; errors: string[] }>();
    for (const [path, methods] of Object.entries(openapi.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const success: string[] = [];
        const errors: string[] = [];
        for (const [status, response] of Object.entries(operation.responses)) {
          const schema = response.content?.['application/json']?.schema;
          if (Number(status) < 400) {
            success.push(schema ? `${status} {${fieldsOf(openapi, schema).join(', ')}}` : status);
            continue;
          }
          const codes = schema?.allOf?.[1]?.properties?.error?.enum ?? [];
          // An error response without codes would be an undeclared route (route-answers.ts).
          expect(codes, `${method} ${path} ${status}`).not.toEqual([]);
          errors.push(...codes.map((code) => `${status} ${code}`));
        }
        served.set(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`, {
          success,
          errors: errors.sort(),
        });
      }
    }
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(served));
  });

  it('shows the user, session and token-response fields of the components', async () => {
    const openapi = (await app.inject({ url: '/openapi.json' })).json() as OpenApi;
    const text = read('docs/api.md');
    const shape = (name: string) =>
      new RegExp(`^- \`${name}\`: \`\\{([^}]*)\\}\``, 'm').exec(text)?.[1]?.split(', ');
    const component = (name: string) => fieldsOf(openapi, { $ref: `#/components/schemas/${name}` });
    expect(shape('user')).toEqual(component('User'));
    expect(shape('session')).toEqual(component('Session'));
    const example = /- Token response:\n\s*```json\n([\s\S]*?)```/.exec(text)?.[1];
    // The example is a login in `body` delivery: every field, `deviceToken` included.
    expect(Object.keys(JSON.parse(example!) as object)).toEqual(
      component('TokenResponseBody').map((name) => name.replace(/\?$/, '')),
    );
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

interface Schema {
  $ref?: string;
  oneOf?: Schema[];
  allOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: string[];
}
interface OpenApi {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema?: Schema }> }> }>
  >;
  components: { schemas: Record<string, Schema> };
}

/** `400 invalid_request`-style codes in backticks, as docs/api.md writes them. */
function codesIn(text: string): string[] {
  return [...text.matchAll(/`(\d{3} \w+)`/g)].map((m) => m[1]!);
}

/** `` `200 {user, session}` `` or `` `204` ``: a status with the top-level fields of its body. */
function successesIn(text: string): string[] {
  return [...text.matchAll(/`(\d{3})(?: \{([^}]*)\})?`/g)].map((m) =>
    m[2] === undefined ? m[1]! : `${m[1]} {${m[2]}}`,
  );
}

/**
 * The top-level fields of a body schema, in order; over the variants of a `oneOf` (the token
 * response), a field not required in every one is marked `?`, as docs/api.md marks it.
 */
function fieldsOf(openapi: OpenApi, schema: Schema): string[] {
  const resolve = (s: Schema): Schema =>
    s.$ref === undefined ? s : resolve(openapi.components.schemas[s.$ref.split('/').pop()!]!);
  const resolved = resolve(schema);
  const variants = (resolved.oneOf ?? [resolved]).map(resolve);
  const always = new Map<string, boolean>();
  for (const variant of variants) {
    for (const name of Object.keys(variant.properties ?? {}))
      always.set(name, always.get(name) ?? true);
  }
  for (const variant of variants) {
    for (const name of always.keys()) {
      if (!variant.required?.includes(name)) always.set(name, false);
    }
  }
  return [...always].map(([name, required]) => (required ? name : `${name}?`));
}
