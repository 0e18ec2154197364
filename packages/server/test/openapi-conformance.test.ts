import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { cookieValue, PASSWORD, setCookies, startTestServer, tempDir } from './helpers.js';

// ajv-formats is CommonJS: its default export arrives as the module under ESM.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

const { dir, cleanup } = tempDir();
const CLIENT = { id: 'api', secret: 'a-secret-of-sixteen-characters' };
const basic = `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`;

/**
 * Real answers over a socket, validated against the schema `/openapi.json` gives for that route and
 * status: the success bodies (the token response in each delivery among them) and the errors, whose
 * `error` must be one of the codes the route declares for that status (route-answers.ts).
 */
describe('answers conform to /openapi.json', () => {
  let app: FastifyInstance;
  let base: string;
  let ajv: Ajv;

  beforeAll(async () => {
    ({ app } = await startTestServer(dir, {
      ROTOR_RATE_LIMIT: 'off',
      ROTOR_OAUTH_CLIENTS: JSON.stringify([CLIENT]),
    }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    const openapi = (await (await fetch(`${base}/openapi.json`)).json()) as object;
    // The document as one schema: each response's `$ref`s resolve in its own components.
    ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
    addFormats(ajv);
    ajv.addSchema(openapi, 'openapi');
  });
  afterAll(async () => {
    await app.close();
    cleanup();
  });

  /** Sends a request and checks its answer against the route's response schema for its status. */
  async function conforming(method: string, path: string, init: RequestInit = {}) {
    const response = await fetch(`${base}${path}`, { ...init, method });
    // The OpenAPI path of the request: no query, a session id as the `{id}` parameter.
    const route = path.split('?')[0]!.replace(/\/[0-9a-f-]{36}$/, '/{id}');
    const pointer = ['paths', route, method.toLowerCase(), 'responses', String(response.status)]
      .map((part) => part.replace(/~/g, '~0').replace(/\//g, '~1'))
      .join('/');
    const text = await response.text();
    const body = text === '' ? undefined : (JSON.parse(text) as unknown);
    const declared = ajv.getSchema(`openapi#/${pointer}`);
    expect(declared, `${method} ${route} declares ${response.status}`).toBeDefined();
    const validate = ajv.getSchema(`openapi#/${pointer}/content/application~1json/schema`);
    if (validate === undefined) {
      expect(body, `${method} ${route} ${response.status} has no body`).toBeUndefined();
    } else {
      expect(validate(body), JSON.stringify([body, validate.errors])).toBe(true);
    }
    return { response, body: body as Record<string, unknown> };
  }

  const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const form = (fields: Record<string, string>): RequestInit => ({
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
    body: new URLSearchParams(fields).toString(),
  });
  const email = 'conform@example.com';

  it('register, login in each delivery, refresh, and the signed-in reads', async () => {
    const registered = await conforming(
      'POST',
      '/auth/register',
      json({ email, password: PASSWORD }),
    );
    expect(registered.response.status).toBe(201);

    const credentials = { email, password: PASSWORD };
    const body = await conforming(
      'POST',
      '/auth/login',
      json(credentials, { 'token-delivery': 'body' }),
    );
    expect(body.response.status).toBe(200);
    expect(body.body.refreshToken).toBeTypeOf('string');
    const split = await conforming('POST', '/auth/login', json(credentials));
    expect(split.body.accessToken).toBeTypeOf('string');
    expect(split.body.refreshToken).toBeUndefined();
    const cookies = await conforming(
      'POST',
      '/auth/login',
      json(credentials, { 'token-delivery': 'cookies' }),
    );
    expect(cookies.body.accessToken).toBeUndefined();

    const refreshed = await conforming(
      'POST',
      '/auth/refresh',
      json({ refreshToken: body.body.refreshToken }),
    );
    expect(refreshed.response.status).toBe(200);
    const refreshCookie = cookieValue(setCookies(split.response).get('rotor_refresh'));
    const fromCookie = await conforming('POST', '/auth/refresh', {
      headers: { cookie: `rotor_refresh=${refreshCookie}` },
    });
    expect(fromCookie.response.status).toBe(200);

    const bearer = { authorization: `Bearer ${String(refreshed.body.accessToken)}` };
    expect((await conforming('GET', '/auth/me', { headers: bearer })).response.status).toBe(200);
    expect((await conforming('GET', '/auth/sessions', { headers: bearer })).response.status).toBe(
      200,
    );
    expect((await conforming('GET', '/auth/events', { headers: bearer })).response.status).toBe(
      200,
    );
    const other = String(cookies.body.sessionId);
    expect(
      (await conforming('DELETE', `/auth/sessions/${other}`, { headers: bearer })).response.status,
    ).toBe(204);
    expect(
      (
        await conforming(
          'POST',
          '/auth/logout',
          json({ refreshToken: refreshed.body.refreshToken }),
        )
      ).response.status,
    ).toBe(204);
  });

  it('errors carry a code the route declares for their status', async () => {
    const wrong = await conforming(
      'POST',
      '/auth/login',
      json({ email, password: 'not the password' }),
    );
    expect(wrong.body.error).toBe('invalid_credentials');
    expect(
      (await conforming('POST', '/auth/register', json({ email, password: PASSWORD }))).body.error,
    ).toBe('email_taken');
    expect(
      (await conforming('POST', '/auth/refresh', json({ refreshToken: 'x'.repeat(43) }))).body
        .error,
    ).toBe('invalid_token');
    expect((await conforming('POST', '/auth/refresh', json({}))).body.error).toBe('missing_token');
    expect((await conforming('GET', '/auth/me')).body.error).toBe('missing_token');
    expect(
      (
        await conforming('GET', '/auth/sessions?limit=0', {
          headers: { authorization: 'Bearer x.y.z' },
        })
      ).body.error,
    ).toBe('invalid_token');
    expect((await conforming('POST', '/auth/login', json({ email }))).body.error).toBe(
      'invalid_request',
    );
    expect(
      (
        await conforming('POST', '/auth/login', {
          headers: { 'content-type': 'text/plain' },
          body: 'hi',
        })
      ).body.error,
    ).toBe('unsupported_media_type');
    expect(
      (await conforming('POST', '/auth/refresh', json({}, { origin: 'https://evil.example' }))).body
        .error,
    ).toBe('csrf_rejected');
  });

  it('the system and OAuth routes', async () => {
    for (const path of [
      '/healthz',
      '/readyz',
      '/.well-known/jwks.json',
      '/.well-known/oauth-authorization-server',
    ]) {
      expect((await conforming('GET', path)).response.status).toBe(200);
    }
    const granted = await conforming(
      'POST',
      '/oauth/token',
      form({ grant_type: 'password', username: email, password: PASSWORD }),
    );
    expect(granted.response.status).toBe(200);
    const token = String(granted.body.access_token);
    expect((await conforming('POST', '/oauth/introspect', form({ token }))).body.active).toBe(true);
    expect((await conforming('POST', '/oauth/revoke', form({ token }))).response.status).toBe(200);
    expect((await conforming('POST', '/oauth/introspect', form({ token }))).body.active).toBe(
      false,
    );
    const bad = await conforming(
      'POST',
      '/oauth/token',
      form({ grant_type: 'refresh_token', refresh_token: 'nope' }),
    );
    expect(bad.body.error).toBe('invalid_grant');
    expect(
      (await conforming('POST', '/oauth/token', form({ grant_type: 'magic' }))).body.error,
    ).toBe('unsupported_grant_type');
  });

  it('a code the route does not declare, or a field no schema names, fails the schema', async () => {
    const refused = ajv.getSchema(
      'openapi#/paths/~1auth~1login/post/responses/401/content/application~1json/schema',
    )!;
    expect(refused({ error: 'invalid_credentials', message: 'x' })).toBe(true);
    expect(refused({ error: 'refresh_token_reused', message: 'x' })).toBe(false);
    const granted = ajv.getSchema(
      'openapi#/paths/~1auth~1login/post/responses/200/content/application~1json/schema',
    )!;
    const { body } = await conforming('POST', '/auth/login', json({ email, password: PASSWORD }));
    expect(granted(body)).toBe(true);
    expect(granted({ ...body, passwordHash: 'x' })).toBe(false);
    // A refresh token in the body comes with the access token (body delivery), never alone.
    expect(granted({ ...body, accessToken: undefined, refreshToken: 'x' })).toBe(false);
  });
});
