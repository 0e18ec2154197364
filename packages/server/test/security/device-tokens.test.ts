import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  cookieAttributes,
  cookieValue,
  DIALECTS,
  PASSWORD,
  registerUser,
  setCookies,
  startTestServer,
  tempDir,
  type TestServer,
} from '../helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/**
 * Issue 13, item 13: anyone could lock an owner out with five wrong passwords. OWASP's device
 * cookies: a successful sign-in leaves a signed device token; a login that presents a valid one
 * for the account is limited per device token and never blocked by the account's lockout, while
 * untrusted clients share the account's budget.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`device tokens [${dialect.name}]`, () => {
    let server: TestServer;
    let email: string;
    beforeEach(async () => {
      await server?.app.close();
      server = await startTestServer(dir, {}, dialect.name);
      email = await registerUser(server.app);
    });
    afterAll(() => server?.app.close());

    const login = (
      password: string,
      options: { deviceToken?: string; cookie?: string; delivery?: string; ip?: string } = {},
    ) =>
      server.app.inject({
        method: 'POST',
        url: '/auth/login',
        remoteAddress: options.ip ?? '198.51.100.7',
        headers: {
          'token-delivery': options.delivery ?? 'body',
          ...(options.cookie && { cookie: `rotor_device=${options.cookie}` }),
        },
        payload: {
          email,
          password,
          ...(options.deviceToken && { deviceToken: options.deviceToken }),
        },
      });
    /** Five wrong passwords from an attacker's address: the account's budget is spent. */
    const lockOut = async () => {
      for (let i = 0; i < 5; i += 1) {
        expect((await login(`guess ${i}`, { ip: '203.0.113.66' })).statusCode).toBe(401);
      }
      expect((await login(PASSWORD)).statusCode).toBe(429);
    };

    it("a body client's device token signs the owner in while strangers have locked the account", async () => {
      const first = await login(PASSWORD);
      const deviceToken = first.json().deviceToken as string;
      expect(deviceToken).toMatch(/^ey/);
      await lockOut();
      const owner = await login(PASSWORD, { deviceToken });
      expect(owner.statusCode).toBe(200);
      // Each sign-in leaves a new device token.
      expect(owner.json().deviceToken).toMatch(/^ey/);
    });

    it('a browser gets the device token as an HttpOnly cookie for the login route only, and is not locked out', async () => {
      const first = await login(PASSWORD, { delivery: 'split' });
      expect(first.json().deviceToken).toBeUndefined();
      const line = setCookies(first).get('rotor_device')!;
      const attributes = cookieAttributes(line);
      for (const attribute of ['httponly', 'secure', 'samesite=strict', 'path=/auth/login']) {
        expect(attributes).toContain(attribute);
      }
      await lockOut();
      expect((await login(PASSWORD, { cookie: cookieValue(line)! })).statusCode).toBe(200);
    });

    it("another account's device token, a forged one and an expired one are no trust: the account's budget applies", async () => {
      const other = await registerUser(server.app);
      const theirs = await server.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { 'token-delivery': 'body' },
        payload: { email: other, password: PASSWORD },
      });
      const foreign = theirs.json().deviceToken as string;
      const mine = (await login(PASSWORD)).json().deviceToken as string;
      const [header, payload] = mine.split('.');
      const forged = `${header}.${payload}.${'A'.repeat(43)}`;
      await lockOut();
      expect((await login(PASSWORD, { deviceToken: foreign })).statusCode).toBe(429);
      expect((await login(PASSWORD, { deviceToken: forged })).statusCode).toBe(429);
      expect((await login(PASSWORD, { deviceToken: 'not a token' })).statusCode).toBe(429);
      server.clock.advance(181 * 24 * 60 * 60 * 1000);
      // 181 days later the lockout is long over, but the token is expired: it earns no own budget.
      for (let i = 0; i < 5; i += 1) await login(`guess ${i}`, { ip: '203.0.113.66' });
      expect((await login(PASSWORD, { deviceToken: mine })).statusCode).toBe(429);
    });

    it('a password change or sign-out everywhere voids every device token issued before it: tokens gathered with the old password buy no guesses', async () => {
      // Twenty logins while the password was known: twenty device tokens.
      const farmed = [];
      for (let i = 0; i < 20; i += 1) farmed.push((await login(PASSWORD)).json().deviceToken);
      const owner = (await login(PASSWORD)).json().accessToken as string;
      const changed = await server.app.inject({
        method: 'POST',
        url: '/auth/password',
        headers: { authorization: `Bearer ${owner}` },
        payload: { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' },
      });
      expect(changed.statusCode).toBe(204);
      // Guesses at the new password, each with another farmed token: the account's budget.
      const statuses = [];
      for (const deviceToken of farmed) {
        statuses.push((await login(`guess ${statuses.length}`, { deviceToken })).statusCode);
      }
      expect(statuses.filter((s) => s === 401)).toHaveLength(5);
      expect(statuses.filter((s) => s === 429)).toHaveLength(15);
    });

    it('sign-out everywhere withdraws the trust of the devices too', async () => {
      const first = (await login(PASSWORD)).json();
      await server.app.inject({
        method: 'POST',
        url: '/auth/logout-all',
        headers: { authorization: `Bearer ${first.accessToken}` },
      });
      await lockOut();
      expect((await login(PASSWORD, { deviceToken: first.deviceToken })).statusCode).toBe(429);
    });

    it("tossed cookies beside the owner's block no sign-in, and the owner's device cookie still counts", async () => {
      // Found by the second attack review: a second rotor_device or rotor_refresh from a sibling
      // subdomain made every sign-in 400.
      const other = await registerUser(server.app);
      const theirs = await server.app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { 'token-delivery': 'split' },
        payload: { email: other, password: PASSWORD },
      });
      const tossed = cookieValue(setCookies(theirs).get('rotor_device'))!;
      const first = await login(PASSWORD, { delivery: 'split' });
      const mine = cookieValue(setCookies(first).get('rotor_device'))!;
      await lockOut();
      const owner = await server.app.inject({
        method: 'POST',
        url: '/auth/login',
        remoteAddress: '198.51.100.7',
        headers: {
          'token-delivery': 'split',
          cookie: `rotor_device=${tossed}; rotor_refresh=a; rotor_device=${mine}; rotor_refresh=b`,
        },
        payload: { email, password: PASSWORD },
      });
      expect(owner.statusCode).toBe(200);
    });

    it('a device token has a budget of its own: five wrong passwords with it, then it is limited too', async () => {
      const deviceToken = (await login(PASSWORD)).json().deviceToken as string;
      for (let i = 0; i < 5; i += 1) {
        expect((await login(`typo ${i}`, { deviceToken })).statusCode).toBe(401);
      }
      expect((await login(PASSWORD, { deviceToken })).statusCode).toBe(429);
      // The account's own budget was not spent by the trusted device's failures.
      expect((await login(PASSWORD)).statusCode).toBe(200);
    });
  });
}
