import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DIALECTS,
  login,
  PASSWORD,
  registerUser,
  startTestServer,
  tempDir,
  type TestServer,
} from './helpers.js';

// docs/security-13-input.md, item B: GET /auth/sessions and GET /auth/events are paged with
// ?limit= and an opaque ?cursor= (keyset, not OFFSET). Before, 300 logins made a 283 KB session
// list, and the newest 50 events were all a user could see.

interface Listed {
  items: { id?: string; sessionId?: string | null; type?: string; at?: string }[];
  nextCursor: string | null;
}

const { dir, cleanup } = tempDir();
afterAll(cleanup);
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`[${dialect.name}]`, () => {
    let server: TestServer;
    let app: FastifyInstance;

    beforeAll(async () => {
      // Limits off: 55 failed logins of one account would otherwise be blocked after 5.
      server = await startTestServer(dir, { ROTOR_RATE_LIMIT: 'off' }, dialect.name);
      app = server.app;
    });
    afterAll(async () => {
      await app.close();
    });

    async function get(list: 'sessions' | 'events', token: string, query = '') {
      const response = await app.inject({
        method: 'GET',
        url: `/auth/${list}${query}`,
        headers: { authorization: `Bearer ${token}` },
      });
      return response;
    }

    async function page(list: 'sessions' | 'events', token: string, query = ''): Promise<Listed> {
      const response = await get(list, token, query);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      return { items: body[list], nextCursor: body.nextCursor };
    }

    /** Every page of a list, `limit` at a time, following nextCursor to the end. */
    async function allPages(list: 'sessions' | 'events', token: string, limit: number) {
      const pages: Listed['items'][] = [];
      let cursor: string | null = null;
      do {
        const query: string = `?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
        const result = await page(list, token, query);
        pages.push(result.items);
        cursor = result.nextCursor;
      } while (cursor !== null && pages.length < 100);
      return pages;
    }

    /** A user with `count` sessions, some opened in the same millisecond (ties broken by id). */
    async function userWithSessions(count: number) {
      const email = await registerUser(app);
      let token = '';
      for (let i = 0; i < count; i += 1) {
        if (i % 3 === 0) server.clock.advance(1_000);
        token = (await login(app, email)).body.accessToken!;
      }
      return { email, token };
    }

    it('7 sessions with limit=3 come in pages of 3, 3 and 1, in the unpaged order, none twice', async () => {
      const { token } = await userWithSessions(7);
      const pages = await allPages('sessions', token, 3);
      expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
      const ids = pages.flat().map((s) => s.id);
      expect(new Set(ids).size).toBe(7);
      const unpaged = await page('sessions', token, '?limit=100');
      expect(unpaged.nextCursor).toBeNull();
      expect(ids).toEqual(unpaged.items.map((s) => s.id));
      // The default page holds them all, and says it is the last.
      expect((await page('sessions', token)).nextCursor).toBeNull();
    });

    it('a session opened between two pages shifts nothing: the next page continues where it was', async () => {
      const { email, token } = await userWithSessions(5);
      const before = (await page('sessions', token, '?limit=100')).items.map((s) => s.id);
      const first = await page('sessions', token, '?limit=2');
      server.clock.advance(1_000);
      await login(app, email);
      const second = await page('sessions', token, `?limit=2&cursor=${first.nextCursor}`);
      expect(second.items.map((s) => s.id)).toEqual(before.slice(2, 4));
    });

    it('events with limit=3 come in pages that together are the unpaged list, none twice', async () => {
      const { token } = await userWithSessions(7);
      const pages = await allPages('events', token, 3);
      // 7 logins: 7 login_succeeded events.
      expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
      const unpaged = await page('events', token, '?limit=100');
      expect(pages.flat()).toEqual(unpaged.items);
      const keys = pages.flat().map((e) => `${e.at} ${e.sessionId}`);
      expect(new Set(keys).size).toBe(7);
    });

    it('55 failed logins do not hide the successful login: it is reachable by paging', async () => {
      const email = await registerUser(app);
      // A stranger signs in from somewhere…
      const stranger = await login(app, email, 'body', { 'user-agent': 'stranger/1.0' });
      // …then buries it under failed attempts.
      for (let i = 0; i < 55; i += 1) {
        server.clock.advance(10);
        const response = await app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email, password: `not ${PASSWORD}` },
        });
        expect(response.statusCode).toBe(401);
      }
      server.clock.advance(10);
      const token = (await login(app, email)).body.accessToken!;

      const first = await page('events', token);
      expect(first.items).toHaveLength(50);
      expect(first.items.some((e) => e.sessionId === stranger.body.sessionId)).toBe(false);
      expect(first.nextCursor).not.toBeNull();

      const events = (await allPages('events', token, 50)).flat();
      expect(events).toHaveLength(57);
      expect(events.at(-1)).toMatchObject({
        type: 'login_succeeded',
        sessionId: stranger.body.sessionId,
      });
    });

    describe('a bad limit or cursor is 400 invalid_request naming the field', () => {
      let token: string;
      let sessionsCursor: string;
      let eventsCursor: string;
      beforeAll(async () => {
        ({ token } = await userWithSessions(3));
        sessionsCursor = (await page('sessions', token, '?limit=1')).nextCursor!;
        eventsCursor = (await page('events', token, '?limit=1')).nextCursor!;
      });

      const limits = ['0', '101', '-1', '1.5', 'abc', '', '1e2', '99999', '10&limit=20'];
      for (const list of ['sessions', 'events'] as const) {
        it.each(limits)(`GET /auth/${list}?limit=%s → 400, field limit`, async (limit) => {
          const response = await get(list, token, `?limit=${limit}`);
          expect(response.statusCode).toBe(400);
          expect(response.json()).toMatchObject({
            error: 'invalid_request',
            details: { field: 'limit' },
          });
        });

        it.each([
          ['not base64url', () => '!!!'],
          ['empty', () => ''],
          ['garbage that decodes', () => Buffer.from('hello').toString('base64url')],
          ['over 200 characters', () => 'A'.repeat(201)],
          ['the other list’s cursor', () => (list === 'events' ? sessionsCursor : eventsCursor)],
          [
            'a control character in its id',
            () => Buffer.from('s:1700000000000:\u0000').toString('base64url'),
          ],
          ['repeated', () => `${sessionsCursor}&cursor=${eventsCursor}`],
        ])(`GET /auth/${list}?cursor= %s → 400, field cursor`, async (_label, cursor) => {
          const response = await get(list, token, `?cursor=${cursor()}`);
          expect(response.statusCode).toBe(400);
          expect(response.json()).toMatchObject({
            error: 'invalid_request',
            details: { field: 'cursor' },
          });
        });
      }

      it('the limits 1 and 100 are accepted', async () => {
        for (const limit of [1, 100]) {
          expect((await get('sessions', token, `?limit=${limit}`)).statusCode).toBe(200);
          expect((await get('events', token, `?limit=${limit}`)).statusCode).toBe(200);
        }
      });

      it('the engine refuses a bad limit too (an embedding app or the CLI)', async () => {
        const me = await app.inject({
          method: 'GET',
          url: '/auth/me',
          headers: { authorization: `Bearer ${token}` },
        });
        const user = me.json().user as { id: string };
        for (const limit of [0, 101, 2.5, Number.NaN]) {
          await expect(app.rotor.listSessions(user.id, { limit })).rejects.toMatchObject({
            code: 'invalid_request',
            details: { field: 'limit' },
          });
          await expect(app.rotor.listEvents(user.id, { limit })).rejects.toMatchObject({
            code: 'invalid_request',
            details: { field: 'limit' },
          });
        }
      });
    });
  });
}
