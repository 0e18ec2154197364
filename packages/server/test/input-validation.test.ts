import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { KyselyStore } from '@rotor/server';
import {
  codeOf,
  DIALECTS,
  login,
  PASSWORD,
  registerUser,
  startTestServer,
  tempDir,
  type TestServer,
} from './helpers.js';

// docs/security-13-input.md, item A: every string Rotor accepts is validated the same way on both
// stores. Before the rule, U+0000 gave a 500 on PostgreSQL and was stored as-is on SQLite.

/** The hostile characters of the rule: controls (Cc), a lone surrogate, and two invisible ones (Cf). */
const CHARACTERS: [string, string][] = [
  ['U+0000', '\u0000'],
  ['U+001B', '\u001b'],
  ['U+007F', '\u007f'],
  ['lone U+D800', '\ud800'],
  ['U+202E', '\u202e'],
  ['U+200B', '\u200b'],
];

const OAUTH_CLIENTS = JSON.stringify([{ id: 'mobile' }]);

const { dir, cleanup } = tempDir();
afterAll(cleanup);
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`[${dialect.name}]`, () => {
    let server: TestServer;
    let app: FastifyInstance;
    let email: string;
    let accessToken: string;
    let sessionId: string;

    beforeAll(async () => {
      // Limits off: the cases below send many refused sign-ups from one address.
      server = await startTestServer(
        dir,
        { ROTOR_RATE_LIMIT: 'off', ROTOR_OAUTH_CLIENTS: OAUTH_CLIENTS },
        dialect.name,
      );
      app = server.app;
      email = await registerUser(app);
      const { body } = await login(app, email, 'body');
      accessToken = body.accessToken!;
      sessionId = body.sessionId;
    });
    afterAll(async () => {
      await app.close();
    });

    /** Rows per table: a refused request must leave every count as it was. */
    async function counts() {
      const db = (app.rotor.store as KyselyStore).db;
      const count = async (table: 'users' | 'sessions' | 'events' | 'user_tokens') =>
        Number(
          (
            await db
              .selectFrom(table)
              .select((eb) => eb.fn.countAll<number | string>().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      return {
        users: await count('users'),
        sessions: await count('sessions'),
        events: await count('events'),
        tokens: await count('user_tokens'),
      };
    }

    let fresh = 0;
    const freshEmail = () => `fresh${++fresh}-${dialect.name}@example.com`;

    const fields: [string, (bad: string) => InjectOptions, string][] = [
      [
        'register email',
        (c) => ({
          method: 'POST',
          url: '/auth/register',
          payload: { email: `ad${c}a-${++fresh}@example.com`, password: PASSWORD },
        }),
        'email',
      ],
      [
        'register name',
        (c) => ({
          method: 'POST',
          url: '/auth/register',
          payload: { email: freshEmail(), password: PASSWORD, name: `Ada${c}Lovelace` },
        }),
        'name',
      ],
      [
        'login email',
        (c) => ({
          method: 'POST',
          url: '/auth/login',
          payload: { email: `${c}${email}`, password: PASSWORD },
        }),
        'email',
      ],
      [
        'login deviceName',
        (c) => ({
          method: 'POST',
          url: '/auth/login',
          payload: { email, password: PASSWORD, deviceName: `Work${c}laptop` },
        }),
        'deviceName',
      ],
    ];

    describe('control characters are 400 invalid_request naming the field, and nothing is stored', () => {
      const cases = fields.flatMap(([label, request, field]) =>
        CHARACTERS.map(([name, c]) => [label, name, c, request, field] as const),
      );
      it.each(cases)('%s with %s → 400, details.field', async (_l, _n, c, request, field) => {
        const before = await counts();
        const response = await app.inject(request(c));
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({ error: 'invalid_request', details: { field } });
        expect(await counts()).toEqual(before);
      });
    });

    describe('a session id in the path that is not a UUID is 404 not_found, answered without a query', () => {
      it.each(CHARACTERS.filter(([name]) => !name.startsWith('lone')))(
        'DELETE /auth/sessions/:id with %s → 404, the session stays',
        async (_name, c) => {
          const before = await counts();
          const transaction = vi.spyOn(app.rotor.store, 'transaction');
          try {
            const response = await app.inject({
              method: 'DELETE',
              url: `/auth/sessions/${encodeURIComponent(sessionId + c)}`,
              headers: { authorization: `Bearer ${accessToken}` },
            });
            expect(response.statusCode).toBe(404);
            expect(response.json().error).toBe('not_found');
            expect(transaction).not.toHaveBeenCalled();
          } finally {
            transaction.mockRestore();
          }
          expect(await counts()).toEqual(before);
          expect((await app.rotor.store.findSession(sessionId))?.revoked_at).toBeNull();
        },
      );

      it('a lone surrogate cannot be spelled in a URL: its UTF-8 bytes are 400 invalid_request', async () => {
        const response = await app.inject({
          method: 'DELETE',
          url: `/auth/sessions/${sessionId}%ED%A0%80`,
          headers: { authorization: `Bearer ${accessToken}` },
        });
        expect(response.statusCode).toBe(400);
        expect(response.json().error).toBe('invalid_request');
      });
    });

    describe('the OAuth password grant refuses a bad username in the OAuth error shape, never 500', () => {
      // A form body is UTF-8: a lone surrogate cannot be sent in one (it arrives as U+FFFD, a wrong
      // username like any other), so only the characters that can be sent are cases here.
      const sendable = CHARACTERS.filter(([name]) => !name.startsWith('lone'));
      it.each(sendable)('username with %s → 400 invalid_request', async (_name, c) => {
        const before = await counts();
        const response = await app.inject({
          method: 'POST',
          url: '/oauth/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: new URLSearchParams({
            grant_type: 'password',
            username: `${email}${c}`,
            password: PASSWORD,
            client_id: 'mobile',
          }).toString(),
        });
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({ error: 'invalid_request' });
        expect(typeof response.json().error_description).toBe('string');
        expect(await counts()).toEqual(before);
      });

      it.each(CHARACTERS)('client_id with %s → 401 invalid_client', async (_name, c) => {
        const response = await app.inject({
          method: 'POST',
          url: '/oauth/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: new URLSearchParams({
            grant_type: 'password',
            username: email,
            password: PASSWORD,
            client_id: `mobile${c}`,
          }).toString(),
        });
        expect(response.statusCode).toBe(401);
        expect(response.json().error).toBe('invalid_client');
      });
    });

    describe('other strings that reach a query never give a 500', () => {
      it.each(CHARACTERS)('a refresh token with %s → 401 invalid_token', async (_name, c) => {
        const response = await app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: `${'A'.repeat(42)}${c}` },
        });
        expect(response.statusCode).toBe(401);
        expect(response.json().error).toBe('invalid_token');
      });

      it.each(CHARACTERS)(
        'a Token-Delivery header with %s → 400 invalid_request',
        async (_n, c) => {
          const response = await app.inject({
            method: 'POST',
            url: '/auth/login',
            headers: { 'token-delivery': `body${c}` },
            payload: { email, password: PASSWORD },
          });
          expect(response.statusCode).toBe(400);
          expect(response.json().error).toBe('invalid_request');
        },
      );

      it.each(CHARACTERS)(
        'a user agent with %s is stored without its control characters',
        async (_name, c) => {
          const response = await app.inject({
            method: 'POST',
            url: '/auth/login',
            headers: { 'token-delivery': 'body', 'user-agent': `curl/8.5${c}.0` },
            payload: { email, password: PASSWORD, deviceName: 'curl' },
          });
          expect(response.statusCode).toBe(200);
          const session = await app.rotor.store.findSession(response.json().sessionId);
          // Controls and the lone surrogate are stripped; visible-text rules are not the user
          // agent's (it is informational, and no one can sign in as it).
          const expected = /[\p{Cc}\p{Cs}]/u.test(c) ? 'curl/8.5.0' : `curl/8.5${c}.0`;
          expect(session?.user_agent).toBe(expected);
          const events = await app.rotor.listEvents(session!.user_id, { limit: 1 });
          expect(events.items[0]?.user_agent).toBe(expected);
        },
      );
    });

    describe('look-alike accounts', () => {
      it('ad\\u200Ba@example.com is refused while ada@example.com works', async () => {
        const real = `ada-${dialect.name}@example.com`;
        const twin = `ad\u200Ba-${dialect.name}@example.com`;
        await registerUser(app, real);
        const refused = await app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: twin, password: PASSWORD },
        });
        expect(refused.statusCode).toBe(400);
        expect(refused.json().details).toEqual({ field: 'email' });
        expect((await login(app, real)).response.statusCode).toBe(200);
        const twinLogin = await app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email: twin, password: PASSWORD },
        });
        expect(twinLogin.statusCode).toBe(400);
        expect(twinLogin.json().details).toEqual({ field: 'email' });
      });
    });

    describe('invisible characters that are not format characters', () => {
      // Found by the attack review: each made a look-alike of a real account before.
      const invisible = {
        'U+034F combining grapheme joiner': '\u034F',
        'U+FE0F variation selector 16': '\uFE0F',
        'U+E0100 variation selector 17': '\u{E0100}',
        'U+180B Mongolian free variation selector': '\u180B',
        'U+17B4 Khmer inherent vowel': '\u17B4',
        'U+2800 blank Braille pattern': '\u2800',
      };
      it.each(Object.entries(invisible))(
        '%s is refused in an email, a name and a device name',
        async (_label, character) => {
          const email = `look${character}alike-${dialect.name}@example.com`;
          const asEmail = await app.inject({
            method: 'POST',
            url: '/auth/register',
            payload: { email, password: PASSWORD },
          });
          expect(asEmail.statusCode).toBe(400);
          expect(asEmail.json().details).toEqual({ field: 'email' });
          const asName = await app.inject({
            method: 'POST',
            url: '/auth/register',
            payload: {
              email: `n${Date.now()}@example.com`,
              password: PASSWORD,
              name: `Ada${character}`,
            },
          });
          expect(asName.json().details).toEqual({ field: 'name' });
          const real = await registerUser(app);
          const asDevice = await app.inject({
            method: 'POST',
            url: '/auth/login',
            payload: { email: real, password: PASSWORD, deviceName: `iPhone${character}` },
          });
          expect(asDevice.statusCode).toBe(400);
          expect(asDevice.json().details).toEqual({ field: 'deviceName' });
        },
      );
    });

    it.each([
      ['U+0000', 'pass\u0000word!'],
      ['a lone surrogate', 'pass\uD800word!'],
    ])(
      'a new password with %s is refused at sign-up, naming the field',
      async (_label, password) => {
        const answer = await app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: `pw${Date.now()}-${dialect.name}@example.com`, password },
        });
        expect(answer.statusCode).toBe(400);
        expect(answer.json().details).toEqual({ field: 'password' });
      },
    );

    describe('the engine applies the rule too, for apps that embed it', () => {
      it('register and login through the engine refuse control characters with the field named', async () => {
        const rotor = app.rotor;
        const client = { ip: null, userAgent: null };
        const refused = async (promise: Promise<unknown>) => {
          const error = await promise.then(
            () => undefined,
            (e: unknown) => e,
          );
          return error as { code?: string; details?: unknown } | undefined;
        };
        expect(
          await refused(rotor.register({ email: `x\u0000@example.com`, password: PASSWORD })),
        ).toMatchObject({ code: 'invalid_request', details: { field: 'email' } });
        expect(
          await refused(
            rotor.register({ email: freshEmail(), password: PASSWORD, name: 'Eve\u202e' }),
          ),
        ).toMatchObject({ code: 'invalid_request', details: { field: 'name' } });
        expect(
          await refused(
            rotor.login({
              email,
              password: PASSWORD,
              deviceName: 'Phone\u0000',
              delivery: 'body',
              ...client,
            }),
          ),
        ).toMatchObject({ code: 'invalid_request', details: { field: 'deviceName' } });
        expect(await codeOf(rotor.revokeSession('no-user', '\u0000'))).toBe('not_found');
      });

      it('a refused login costs no hashing: validation runs before anything else', async () => {
        const { passwords } = app.rotor.accounts;
        const verify = vi.spyOn(passwords, 'verify');
        const verifyUnknown = vi.spyOn(passwords, 'verifyUnknown');
        try {
          for (const payload of [
            { email: `${email}\u0000`, password: PASSWORD },
            { email, password: PASSWORD, deviceName: 'a\u202eb' },
          ]) {
            const response = await app.inject({ method: 'POST', url: '/auth/login', payload });
            expect(response.statusCode).toBe(400);
          }
          expect(verify).not.toHaveBeenCalled();
          expect(verifyUnknown).not.toHaveBeenCalled();
        } finally {
          verify.mockRestore();
          verifyUnknown.mockRestore();
        }
      });
    });
  });
}
