import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { rotorPlugin } from '@rotor/server/fastify';
import { decodeJwt } from 'jose';
import {
  DIALECTS,
  login,
  PASSWORD,
  registerUser,
  startTestServer,
  tempDir,
  testConfig,
  type TestServer,
} from './helpers.js';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from './smtp-sink.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const NEW_PASSWORD = 'a brand new passphrase';

let sink: SmtpSink;
beforeAll(async () => {
  sink = await startSmtpSink();
});
afterAll(() => sink.close());

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`account mails over real SMTP [${dialect.name}]`, () => {
    let server: TestServer;
    let app: FastifyInstance;
    let rotor: FastifyInstance['rotor'];
    let email: string;

    const start = async (env: Record<string, string> = {}) => {
      await app?.close();
      server = await startTestServer(dir, { ROTOR_SMTP_URL: sink.url, ...env }, dialect.name);
      app = server.app;
      rotor = app.rotor;
    };
    beforeEach(async () => {
      await start();
      email = await registerUser(app, `owner-${crypto.randomUUID()}@example.com`);
    });
    afterAll(() => app?.close());

    const post = (url: string, payload: object, token?: string) =>
      app.inject({
        method: 'POST',
        url,
        payload,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    /** The newest mail of `kind` (by its link's action) to `to`, after the background work. */
    const mailTo = async (to: string, action?: string): Promise<ReceivedMail> => {
      await rotor.whenIdle();
      return sink.waitFor((m) => m.to === to && (action === undefined || m.action === action));
    };
    const mailsTo = (to: string) => sink.mails.filter((m) => m.to === to);

    it('sign-up mails a verification link; the link proves the address, in /auth/me and in the next access token', async () => {
      const mail = await mailTo(email, 'verify-email');
      expect(mail.subject).toMatch(/verify|confirm/i);
      expect(mail.link).toMatch(/^http:\/\/127\.0\.0\.1:3000\/#verify-email=[A-Za-z0-9_-]{43}$/);
      const { body } = await login(app, email);
      expect(decodeJwt(body.accessToken!).email_verified).toBe(false);
      const me = await app.inject({
        method: 'GET',
        url: '/auth/me',
        headers: { authorization: `Bearer ${body.accessToken}` },
      });
      expect(me.json().user.emailVerified).toBe(false);

      const verified = await post('/auth/verify-email', { token: mail.token });
      expect(verified.statusCode).toBe(200);
      expect(verified.json().user).toMatchObject({ email, emailVerified: true });
      const refreshed = await post('/auth/refresh', { refreshToken: body.refreshToken });
      expect(decodeJwt(refreshed.json().accessToken).email_verified).toBe(true);
      // Single use.
      const again = await post('/auth/verify-email', { token: mail.token });
      expect(again.statusCode).toBe(400);
      expect(again.json().error).toBe('invalid_link');
    });

    it('password reset: one link, 30 minutes, every session ends, the new password signs in', async () => {
      const laptop = (await login(app, email)).body;
      const phone = (await login(app, email)).body;
      const asked = await post('/auth/password-reset', { email });
      expect(asked.statusCode).toBe(202);
      const mail = await mailTo(email, 'reset-password');
      expect(mail.text).toContain('30 minutes');

      const reset = await post('/auth/password-reset/confirm', {
        token: mail.token,
        newPassword: NEW_PASSWORD,
      });
      expect(reset.statusCode).toBe(200);
      expect(reset.json()).toMatchObject({
        user: { email, emailVerified: true },
        sessionsEnded: 2,
      });
      for (const tokens of [laptop, phone]) {
        const refreshed = await post('/auth/refresh', { refreshToken: tokens.refreshToken });
        expect(refreshed.statusCode).toBe(401);
        expect(refreshed.json().error).toBe('session_revoked');
        expect(refreshed.json().details.reason).toBe('password_reset');
        const me = await app.inject({
          method: 'GET',
          url: '/auth/me',
          headers: { authorization: `Bearer ${tokens.accessToken}` },
        });
        expect(me.statusCode).toBe(401);
      }
      const old = await post('/auth/login', { email, password: PASSWORD });
      expect(old.statusCode).toBe(401);
      const fresh = await post('/auth/login', { email, password: NEW_PASSWORD });
      expect(fresh.statusCode).toBe(200);
      // The link worked once.
      const replay = await post('/auth/password-reset/confirm', {
        token: mail.token,
        newPassword: 'yet another passphrase',
      });
      expect(replay.json().error).toBe('invalid_link');
      const events = await rotor.listEvents(reset.json().user.id);
      expect(events.items.map((e) => e.type)).toEqual(
        expect.arrayContaining(['password_reset_requested', 'password_reset']),
      );
    });

    it('a reset link is void after 30 minutes, after a newer one, and after a password change', async () => {
      await post('/auth/password-reset', { email });
      const first = await mailTo(email, 'reset-password');
      server.clock.advance(31 * 60_000);
      const expired = await post('/auth/password-reset/confirm', {
        token: first.token,
        newPassword: NEW_PASSWORD,
      });
      expect(expired.json().error).toBe('invalid_link');

      await post('/auth/password-reset', { email });
      await rotor.whenIdle();
      const older = await sink.waitFor(
        (m) => m.to === email && m.action === 'reset-password' && m.token !== first.token,
      );
      await post('/auth/password-reset', { email });
      await rotor.whenIdle();
      const newer = await sink.waitFor(
        (m) =>
          m.to === email &&
          m.action === 'reset-password' &&
          m.token !== first.token &&
          m.token !== older.token,
      );
      const replaced = await post('/auth/password-reset/confirm', {
        token: older.token,
        newPassword: NEW_PASSWORD,
      });
      expect(replaced.json().error).toBe('invalid_link');

      const { body } = await login(app, email);
      const changed = await post(
        '/auth/password',
        { currentPassword: PASSWORD, newPassword: 'changed while the link waited' },
        body.accessToken,
      );
      expect(changed.statusCode).toBe(204);
      const afterChange = await post('/auth/password-reset/confirm', {
        token: newer.token,
        newPassword: NEW_PASSWORD,
      });
      expect(afterChange.json().error).toBe('invalid_link');
    });

    it('an unknown address gets the same answer and no mail; per-address limits answer 429 alike', async () => {
      const known = await post('/auth/password-reset', { email });
      const unknownAddress = `nobody-${crypto.randomUUID()}@example.com`;
      const unknown = await post('/auth/password-reset', { email: unknownAddress });
      expect(unknown.statusCode).toBe(known.statusCode);
      expect(unknown.body).toBe(known.body);
      await mailTo(email, 'reset-password');
      expect(mailsTo(unknownAddress)).toEqual([]);
      // Five per address asked for, per hour: the sixth is refused whether or not it has an account.
      for (const address of [email, unknownAddress]) {
        const answers: number[] = [];
        for (let i = 0; i < 5; i += 1) {
          answers.push((await post('/auth/password-reset', { email: address })).statusCode);
        }
        expect(answers.filter((status) => status === 429)).toEqual([429]);
      }
    });

    it('ROTOR_REQUIRE_VERIFIED_EMAIL: the right password of an unproven address is 403 email_not_verified; a wrong one stays 401', async () => {
      await start({ ROTOR_REQUIRE_VERIFIED_EMAIL: 'true' });
      const address = await registerUser(app, `strict-${crypto.randomUUID()}@example.com`);
      const wrong = await post('/auth/login', { email: address, password: 'not the password' });
      expect(wrong.statusCode).toBe(401);
      const refused = await post('/auth/login', { email: address, password: PASSWORD });
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error).toBe('email_not_verified');
      // Asked again, by address, the same way as a reset.
      const resend = await post('/auth/verify-email/send', { email: address });
      expect(resend.statusCode).toBe(202);
      await rotor.whenIdle();
      const first = await sink.waitFor((m) => m.to === address && m.action === 'verify-email');
      const second = await sink.waitFor(
        (m) => m.to === address && m.action === 'verify-email' && m.token !== first.token,
      );
      // The newer link voids the older.
      expect((await post('/auth/verify-email', { token: first.token })).statusCode).toBe(400);
      expect((await post('/auth/verify-email', { token: second.token })).statusCode).toBe(200);
      const signedIn = await post('/auth/login', { email: address, password: PASSWORD });
      expect(signedIn.statusCode).toBe(200);
    });

    it('email change: the password is needed, the new address confirms, the old one is told and can undo it', async () => {
      const { body } = await login(app, email);
      const other = (await login(app, email)).body;
      const newEmail = `moved-${crypto.randomUUID()}@example.com`;
      const wrong = await post(
        '/auth/email',
        { newEmail, password: 'not the password' },
        body.accessToken,
      );
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().error).toBe('invalid_credentials');
      const asked = await post('/auth/email', { newEmail, password: PASSWORD }, body.accessToken);
      expect(asked.statusCode).toBe(202);
      const confirm = await mailTo(newEmail, 'confirm-email');
      const notice = await mailTo(email, 'undo-email-change');
      expect(notice.text).toContain(newEmail);

      // Nothing changed until confirmed.
      expect((await rotor.findUserByEmail(email))?.email).toBe(email);
      const confirmed = await post('/auth/email/confirm', { token: confirm.token });
      expect(confirmed.statusCode).toBe(200);
      expect(confirmed.json().user).toMatchObject({ email: newEmail, emailVerified: true });
      expect((await post('/auth/login', { email: newEmail, password: PASSWORD })).statusCode).toBe(
        200,
      );
      expect((await post('/auth/login', { email, password: PASSWORD })).statusCode).toBe(401);

      // The old address takes the account back, and every session ends.
      const undone = await post('/auth/email/undo', { token: notice.token });
      expect(undone.statusCode).toBe(200);
      expect(undone.json().user.email).toBe(email);
      expect(undone.json().sessionsEnded).toBeGreaterThanOrEqual(3);
      for (const tokens of [body, other]) {
        const refreshed = await post('/auth/refresh', { refreshToken: tokens.refreshToken });
        expect(refreshed.json().details.reason).toBe('email_change_undone');
      }
      expect((await post('/auth/login', { email, password: PASSWORD })).statusCode).toBe(200);
      expect((await post('/auth/email/undo', { token: notice.token })).statusCode).toBe(400);
    });

    it('an email change to a taken address answers the same; the holder is told, nobody gets a link', async () => {
      const holder = await registerUser(app, `holder-${crypto.randomUUID()}@example.com`);
      const { body } = await login(app, email);
      const asked = await post(
        '/auth/email',
        { newEmail: holder, password: PASSWORD },
        body.accessToken,
      );
      expect(asked.statusCode).toBe(202);
      await rotor.whenIdle();
      await sink.waitFor((m) => m.to === holder && m.subject !== '' && !m.token);
      expect(mailsTo(holder).filter((m) => m.action === 'confirm-email')).toEqual([]);
      expect(mailsTo(email).filter((m) => m.action === 'undo-email-change')).toEqual([]);
    });

    it('a hijacker who chains two changes cannot undo the owner’s undo: the oldest address wins', async () => {
      const { body } = await login(app, email);
      const b = `thief-b-${crypto.randomUUID()}@example.com`;
      const c = `thief-c-${crypto.randomUUID()}@example.com`;
      await post('/auth/email', { newEmail: b, password: PASSWORD }, body.accessToken);
      const toB = await mailTo(b, 'confirm-email');
      const ownersUndo = await mailTo(email, 'undo-email-change');
      await post('/auth/email/confirm', { token: toB.token });
      await post('/auth/email', { newEmail: c, password: PASSWORD }, body.accessToken);
      const toC = await mailTo(c, 'confirm-email');
      const thiefsUndo = await mailTo(b, 'undo-email-change');
      await post('/auth/email/confirm', { token: toC.token });
      // The thief undoes the second change (back to b): the owner's link still works.
      expect((await post('/auth/email/undo', { token: thiefsUndo.token })).statusCode).toBe(200);
      const owner = await post('/auth/email/undo', { token: ownersUndo.token });
      expect(owner.statusCode).toBe(200);
      expect(owner.json().user.email).toBe(email);
      // And the thief's link, used once, cannot move it again.
      expect((await post('/auth/email/undo', { token: thiefsUndo.token })).statusCode).toBe(400);
    });
  });
}

describe('mail that cannot be sent', () => {
  it('never blocks the request, and the answer is the one of a sent mail', async () => {
    // A port nothing listens on: every attempt fails (and is retried in the background).
    const { app } = await startTestServer(dir, {
      ROTOR_SMTP_URL: 'smtp://nobody:nothing@127.0.0.1:9',
    });
    try {
      const email = await registerUser(app, `unsent-${crypto.randomUUID()}@example.com`);
      const response = await app.inject({
        method: 'POST',
        url: '/auth/password-reset',
        payload: { email },
      });
      expect(response.statusCode).toBe(202);
      expect(response.json().message).toMatch(/If an account has this address/);
    } finally {
      await app.close();
    }
  });
});

describe('account mails where Rotor is mounted in an app', () => {
  it('the app supplies its own mail sender; links follow ROTOR_APP_URL; the OAuth password grant refuses an unproven address as invalid_grant', async () => {
    const sent: { kind: string; to: string; text: string }[] = [];
    const config = await testConfig(dir, {
      ROTOR_ISSUER: 'http://127.0.0.1:8080/rotor',
      ROTOR_APP_URL: 'http://127.0.0.1:8080/account',
      ROTOR_REQUIRE_VERIFIED_EMAIL: 'true',
      ROTOR_OAUTH_CLIENTS: JSON.stringify([{ id: 'mobile' }]),
    });
    const app = Fastify({ logger: false });
    // The app's own sender (its mail service's SDK in real life): Rotor renders, the app delivers.
    await app.register(rotorPlugin, {
      config,
      prefix: '/rotor',
      mailer: { send: async (message) => void sent.push(message) },
    });
    try {
      const email = `mounted-${crypto.randomUUID()}@example.com`;
      const created = await app.inject({
        method: 'POST',
        url: '/rotor/auth/register',
        payload: { email, password: PASSWORD },
      });
      expect(created.statusCode).toBe(201);
      await app.rotor.whenIdle();
      await until(() => sent.length > 0);
      expect(sent[0]).toMatchObject({ kind: 'verify_email', to: email });
      expect(sent[0]!.text).toMatch(/http:\/\/127\.0\.0\.1:8080\/account#verify-email=[\w-]{43}/);
      // Counted for operators (GET /metrics answers loopback clients).
      await until(() => app.rotor.mailCounts.sent.verify_email === 1);
      const metrics = await app.inject({ url: '/rotor/metrics', remoteAddress: '127.0.0.1' });
      expect(metrics.body).toContain('rotor_mails_total{kind="verify_email",result="sent"} 1');
      expect(metrics.body).toContain('rotor_mails_pending 0');
      // No development outbox when the app sends: no mailbox page.
      expect(app.rotor.outbox).toBeUndefined();
      const mailbox = await app.inject({
        url: '/rotor/dev/mailbox/messages',
        remoteAddress: '127.0.0.1',
      });
      expect(mailbox.statusCode).toBe(404);

      const grant = await app.inject({
        method: 'POST',
        url: '/rotor/oauth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          grant_type: 'password',
          client_id: 'mobile',
          username: email,
          password: PASSWORD,
        }).toString(),
      });
      expect(grant.statusCode).toBe(400);
      expect(grant.json()).toMatchObject({ error: 'invalid_grant' });
      expect(grant.json().error_description).toMatch(/verify/i);
    } finally {
      await app.close();
    }
  });
});

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
