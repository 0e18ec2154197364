import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import Fastify, { type FastifyInstance } from 'fastify';
import { rotorPlugin } from '@rotor/server/fastify';
import { rotorRouter } from '@rotor/server/express';
import { createServer, ManualClock, type DirectoryUser, type UserDirectory } from '@rotor/server';
import { codeOf, DIALECTS, PASSWORD, startTestServer, tempDir, testConfig } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** The app's own user table, in memory: what an embedding app hands Rotor (issue 16). */
class AppUsers implements UserDirectory {
  readonly rows = new Map<string, DirectoryUser>();
  add(user: DirectoryUser): DirectoryUser {
    this.rows.set(user.id, user);
    return user;
  }
  async findByLogin(login: string) {
    return [...this.rows.values()].find((u) => u.email === login.trim().toLowerCase());
  }
  async findById(id: string) {
    return this.rows.get(id);
  }
  async updatePasswordHash(id: string, hash: string) {
    this.rows.set(id, { ...this.rows.get(id)!, passwordHash: hash });
  }
}

const loginAs = (app: FastifyInstance, email: string, password = PASSWORD) =>
  app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { 'token-delivery': 'body' },
    payload: { email, password },
  });

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`your users [${dialect.name}]`, () => {
    let app: FastifyInstance;
    afterEach(() => app?.close());

    it('a bcrypt hash signs in and is upgraded to argon2id; the bcrypt hash is no longer stored', async () => {
      ({ app } = await startTestServer(dir, {}, dialect.name));
      const user = await app.rotor.createUser({ email: 'legacy@example.com' });
      const legacy = await bcryptHash(PASSWORD, { cost: 4 });
      expect(legacy).toMatch(/^\$2b\$/);
      // What a migration from another system writes.
      await app.rotor.store.updatePasswordHash(user.id, legacy);

      expect((await loginAs(app, 'legacy@example.com', 'wrong password!')).statusCode).toBe(401);
      expect((await app.rotor.store.findUserById(user.id))!.password_hash).toBe(legacy);
      expect((await loginAs(app, 'legacy@example.com')).statusCode).toBe(200);
      const stored = (await app.rotor.store.findUserById(user.id))!.password_hash!;
      expect(stored).toMatch(/^\$argon2id\$/);
      expect(stored).not.toBe(legacy);
      // The upgraded hash is the same password.
      expect((await loginAs(app, 'legacy@example.com')).statusCode).toBe(200);
    });

    it('$2a$ and $2y$ hashes verify too', async () => {
      ({ app } = await startTestServer(dir, {}, dialect.name));
      for (const version of ['2a', '2y'] as const) {
        const user = await app.rotor.createUser({ email: `v${version}@example.com` });
        const legacy = await bcryptHash(PASSWORD, { cost: 4, version });
        await app.rotor.store.updatePasswordHash(user.id, legacy);
        expect((await loginAs(app, `v${version}@example.com`)).statusCode).toBe(200);
      }
    });

    it('createUser makes a user without a password: a password login is invalid_credentials', async () => {
      ({ app } = await startTestServer(dir, {}, dialect.name));
      const user = await app.rotor.createUser({ email: 'Sso@Example.com', name: 'Sso' });
      expect(user.email).toBe('sso@example.com');
      expect(user.password_hash).toBeNull();
      const response = await loginAs(app, 'sso@example.com');
      expect(response.statusCode).toBe(401);
      expect(response.json().error).toBe('invalid_credentials');
      expect(await codeOf(app.rotor.createUser({ email: 'sso@example.com' }))).toBe('email_taken');
    });

    it('signIn starts a session as login does: audited, refreshable, a device token', async () => {
      ({ app } = await startTestServer(dir, {}, dialect.name));
      const user = await app.rotor.createUser({ email: 'magic@example.com' });
      const grant = await app.rotor.signIn({
        userId: user.id,
        deviceName: 'Phone',
        delivery: 'split',
        ip: '192.0.2.1',
        userAgent: 'test',
      });
      expect(grant.session.device_name).toBe('Phone');
      expect(grant.deviceToken).toBeTypeOf('string');
      const principal = await app.rotor.authenticate(grant.accessToken);
      expect(principal.user.id).toBe(user.id);
      const refreshed = await app.rotor.refresh({
        refreshToken: grant.refreshToken,
        ip: '192.0.2.1',
        userAgent: 'test',
      });
      expect(refreshed.session.id).toBe(grant.session.id);
      const events = await app.rotor.listEvents(user.id);
      expect(events.items.map((e) => e.type)).toContain('login_succeeded');
      const unknown = app.rotor.signIn({
        userId: 'no-such-user',
        delivery: 'split',
        ip: null,
        userAgent: null,
      });
      expect(await codeOf(unknown)).toBe('not_found');
    });

    describe('with the app’s own user table', () => {
      const startWith = async (users: AppUsers) => {
        const config = await testConfig(dir, {}, dialect.name);
        app = await createServer(config, {
          clock: new ManualClock(Date.now()),
          logger: false,
          users,
        });
      };

      it('signs in a directory user (bcrypt), upgrades the hash through the directory, mirrors the user without its hash', async () => {
        const users = new AppUsers();
        const legacy = await bcryptHash(PASSWORD, { cost: 4 });
        users.add({
          id: 'app-user-1',
          email: 'ann@example.com',
          name: 'Ann',
          passwordHash: legacy,
        });
        await startWith(users);

        expect((await loginAs(app, 'ann@example.com', 'not the password')).statusCode).toBe(401);
        const response = await loginAs(app, 'ann@example.com');
        expect(response.statusCode).toBe(200);
        expect(response.json().user).toMatchObject({ id: 'app-user-1', email: 'ann@example.com' });
        expect(users.rows.get('app-user-1')!.passwordHash).toMatch(/^\$argon2id\$/);
        const mirror = (await app.rotor.store.findUserById('app-user-1'))!;
        expect(mirror).toMatchObject({
          email: 'ann@example.com',
          name: 'Ann',
          password_hash: null,
        });
        // The upgraded hash in the directory signs in.
        expect((await loginAs(app, 'ann@example.com')).statusCode).toBe(200);
        // The mirror follows the directory's email and name.
        users.add({ ...users.rows.get('app-user-1')!, email: 'ann@example.org', name: 'Ann B' });
        expect((await loginAs(app, 'ann@example.org')).statusCode).toBe(200);
        expect(await app.rotor.store.findUserById('app-user-1')).toMatchObject({
          email: 'ann@example.org',
          name: 'Ann B',
        });
      });

      it('refuses register (forbidden), signs nobody in for an unknown login or a null hash', async () => {
        const users = new AppUsers();
        users.add({ id: 'u-2', email: 'nopass@example.com', passwordHash: null });
        await startWith(users);
        const register = await app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: 'new@example.com', password: PASSWORD },
        });
        expect(register.statusCode).toBe(403);
        expect(register.json().error).toBe('forbidden');
        expect((await loginAs(app, 'nobody@example.com')).json().error).toBe('invalid_credentials');
        expect((await loginAs(app, 'nopass@example.com')).json().error).toBe('invalid_credentials');
      });

      it('the account mails are the app’s: reset and verification requests are 403 forbidden (issue 17)', async () => {
        const users = new AppUsers();
        users.add({ id: 'u-3', email: 'ann@example.org', passwordHash: null });
        await startWith(users);
        for (const url of ['/auth/password-reset', '/auth/verify-email/send']) {
          const response = await app.inject({
            method: 'POST',
            url,
            payload: { email: 'ann@example.org' },
          });
          expect(response.statusCode, url).toBe(403);
          expect(response.json().error).toBe('forbidden');
        }
      });

      it('changes the password through the directory and ends the other sessions', async () => {
        const users = new AppUsers();
        users.add({
          id: 'u-3',
          email: 'cy@example.com',
          passwordHash: await bcryptOf(PASSWORD),
        });
        await startWith(users);
        const laptop = (await loginAs(app, 'cy@example.com')).json();
        const phone = (await loginAs(app, 'cy@example.com')).json();
        const change = await app.inject({
          method: 'POST',
          url: '/auth/password',
          headers: { authorization: `Bearer ${laptop.accessToken}` },
          payload: { currentPassword: PASSWORD, newPassword: 'another long passphrase' },
        });
        expect(change.statusCode).toBe(204);
        expect(users.rows.get('u-3')!.passwordHash).toMatch(/^\$argon2id\$/);
        const me = (token: string) =>
          app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } });
        expect((await me(phone.accessToken)).statusCode).toBe(401);
        expect((await me(laptop.accessToken)).statusCode).toBe(200);
        expect((await loginAs(app, 'cy@example.com')).statusCode).toBe(401);
        expect((await loginAs(app, 'cy@example.com', 'another long passphrase')).statusCode).toBe(
          200,
        );
      });

      it('signIn finds the user in the directory', async () => {
        const users = new AppUsers();
        users.add({ id: 'u-4', email: 'dee@example.com', passwordHash: null });
        await startWith(users);
        const grant = await app.rotor.signIn({
          userId: 'u-4',
          delivery: 'split',
          ip: null,
          userAgent: null,
        });
        expect(grant.user.email).toBe('dee@example.com');
      });

      it('the Fastify plugin and the Express router hand users and claims to the engine they build', async () => {
        const users = new AppUsers();
        users.add({ id: 'u-5', email: 'eve@example.com', passwordHash: await bcryptOf(PASSWORD) });
        const claims = () => ({ role: 'editor' });
        const fastify = Fastify({ logger: false });
        await fastify.register(rotorPlugin, {
          config: await testConfig(dir, {}, dialect.name),
          prefix: '/rotor',
          users,
          claims,
        });
        const router = await rotorRouter({
          config: await testConfig(dir, {}, dialect.name),
          prefix: '/rotor',
          users,
          claims,
        });
        try {
          const viaPlugin = await fastify.inject({
            method: 'POST',
            url: '/rotor/auth/login',
            headers: { 'token-delivery': 'body' },
            payload: { email: 'eve@example.com', password: PASSWORD },
          });
          expect(viaPlugin.statusCode).toBe(200);
          expect(viaPlugin.json().user.id).toBe('u-5');
          const viaRouter = await router.rotor.signIn({
            userId: 'u-5',
            delivery: 'body',
            ip: null,
            userAgent: null,
          });
          for (const token of [viaPlugin.json().accessToken, viaRouter.accessToken]) {
            const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
            expect(payload).toMatchObject({ sub: 'u-5', role: 'editor' });
          }
        } finally {
          await Promise.all([fastify.close(), router.close()]);
        }
      });
    });
  });
}

/** A bcrypt hash at the lowest cost, to stand for the app's existing hashes (fast tests). */
function bcryptOf(password: string): Promise<string> {
  return bcryptHash(password, { cost: 4 });
}
