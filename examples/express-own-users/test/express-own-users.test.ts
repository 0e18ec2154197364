import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hash } from '@node-rs/bcrypt';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@rotor/server';
import { createApp, PREFIX } from '@rotor/example-express-own-users';
import { createAppTables } from '../src/database.js';
import { DIALECTS, freshDatabaseUrl, removeSqliteFiles } from './databases.js';

afterAll(removeSqliteFiles);

const PASSWORD = 'correct horse battery';

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`examples/express-own-users [${dialect.name}]`, () => {
    let app: Awaited<ReturnType<typeof createApp>>;
    let server: Server;
    let base: string;
    let adaBcrypt: string;

    beforeEach(async () => {
      app = await createApp({
        databaseUrl: await freshDatabaseUrl(dialect.name),
        config: loadConfig({ ROTOR_ISSUER: `http://127.0.0.1${PREFIX}` }),
      });
      // The app's data from before Rotor: bcrypt hashes, as another system left them.
      await createAppTables(app.db);
      adaBcrypt = await hash(PASSWORD, { cost: 4 });
      await app.db.query('insert into users (id, email, password_hash, role) values (?, ?, ?, ?)', [
        1,
        'ada@example.com',
        adaBcrypt,
        'admin',
      ]);
      await app.db.query('insert into users (id, email, password_hash) values (?, ?, ?)', [
        2,
        'bob@example.com',
        await hash('bob password 123', { cost: 4 }),
      ]);
      await app.db.query('insert into sessions (id, user_id, cart) values (?, ?, ?)', [
        'cart-1',
        1,
        '["tea"]',
      ]);
      await app.db.query('insert into notes (id, user_id, text) values (?, ?, ?), (?, ?, ?)', [
        1,
        1,
        "ada's note",
        2,
        2,
        "bob's note",
      ]);
      server = app.app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterEach(async () => {
      await new Promise((resolve) => server?.close(resolve));
      await app?.close();
    });

    const post = (path: string, body: unknown) =>
      fetch(`${base}${PREFIX}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'token-delivery': 'body' },
        body: JSON.stringify(body),
      });
    const login = (email: string, password: string) => post('/auth/login', { email, password });
    const notes = (accessToken: string) =>
      fetch(`${base}/api/notes`, { headers: { authorization: `Bearer ${accessToken}` } });
    const hashOf = async (id: number) =>
      (await app.db.query('select password_hash from users where id = ?', [id]))[0].password_hash;

    it("a bcrypt user signs in; the app's hash becomes argon2id and the same password signs in again; a wrong one is 401", async () => {
      const wrong = await login('ada@example.com', 'not the password');
      expect(wrong.status).toBe(401);
      expect(((await wrong.json()) as { error: string }).error).toBe('invalid_credentials');
      expect(await hashOf(1)).toBe(adaBcrypt);

      const first = await login('Ada@Example.com', PASSWORD);
      expect(first.status).toBe(200);
      expect(((await first.json()) as { user: { id: string } }).user.id).toBe('1');
      const upgraded = await hashOf(1);
      expect(upgraded).toMatch(/^\$argon2id\$/);

      expect((await login('ada@example.com', PASSWORD)).status).toBe(200);
      expect(await hashOf(1)).toBe(upgraded);
      expect((await login('ada@example.com', 'not the password')).status).toBe(401);
    });

    it("the access token opens the app's route with the role claim; a refresh's token too; a logout closes it at once", async () => {
      const grant = (await (await login('ada@example.com', PASSWORD)).json()) as {
        accessToken: string;
        refreshToken: string;
      };
      const mine = await notes(grant.accessToken);
      expect(mine.status).toBe(200);
      expect(await mine.json()).toEqual({ role: 'admin', notes: [{ id: 1, text: "ada's note" }] });
      const bob = (await (await login('bob@example.com', 'bob password 123')).json()) as {
        accessToken: string;
      };
      expect(await (await notes(bob.accessToken)).json()).toEqual({
        role: 'member',
        notes: [{ id: 2, text: "bob's note" }],
      });

      const refreshed = await post('/auth/refresh', { refreshToken: grant.refreshToken });
      expect(refreshed.status).toBe(200);
      const next = (await refreshed.json()) as { accessToken: string; refreshToken: string };
      expect(next.accessToken).not.toBe(grant.accessToken);
      expect((await notes(next.accessToken)).status).toBe(200);

      expect((await post('/auth/logout', { refreshToken: next.refreshToken })).status).toBe(204);
      const refused = await notes(next.accessToken);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(((await refused.json()) as { error: string }).error).toBe('session_revoked');
      expect((await notes('not-a-token')).status).toBe(401);
    });

    it("a session revoked from another device loses the app's route at once", async () => {
      const signIn = async () =>
        (await (await login('bob@example.com', 'bob password 123')).json()) as {
          accessToken: string;
          sessionId: string;
        };
      const phone = await signIn();
      const laptop = await signIn();
      expect((await notes(phone.accessToken)).status).toBe(200);
      const revoked = await fetch(`${base}${PREFIX}/auth/sessions/${phone.sessionId}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${laptop.accessToken}` },
      });
      expect(revoked.status).toBe(204);
      const refused = await notes(phone.accessToken);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: string }).error).toBe('session_revoked');
      expect((await notes(laptop.accessToken)).status).toBe(200);
      expect((await fetch(`${base}/api/notes`)).status).toBe(401);
    });

    it("Rotor's tables are rotor_*; the app's users and sessions are untouched but for the hash; sign-up stays the app's", async () => {
      const before = await app.db.query('select * from users order by id');
      expect((await login('ada@example.com', PASSWORD)).status).toBe(200);
      expect((await login('bob@example.com', 'bob password 123')).status).toBe(200);
      expect(
        (await post('/auth/register', { email: 'eve@example.com', password: PASSWORD })).status,
      ).toBe(403);

      const after = await app.db.query('select * from users order by id');
      expect(after.map(({ password_hash: _, ...row }) => row)).toEqual(
        before.map(({ password_hash: _, ...row }) => row),
      );
      expect(await app.db.query('select * from sessions')).toEqual([
        { id: 'cart-1', user_id: 1, cart: '["tea"]' },
      ]);
      const tables = (
        dialect.name === 'sqlite'
          ? await app.db.query("select name from sqlite_master where type = 'table'")
          : await app.db.query(
              "select table_name as name from information_schema.tables where table_schema = 'public'",
            )
      ).map((row) => row.name as string);
      expect(tables.filter((name) => !name.startsWith('rotor_')).sort()).toEqual([
        'notes',
        'sessions',
        'users',
      ]);
      expect(tables).toEqual(expect.arrayContaining(['rotor_users', 'rotor_sessions']));
    });
  });
}
