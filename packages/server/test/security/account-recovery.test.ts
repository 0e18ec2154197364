import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import {
  DIALECTS,
  login,
  PASSWORD,
  registerUser,
  startTestServer,
  tempDir,
  type TestServer,
} from '../helpers.js';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '../smtp-sink.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const NEW_PASSWORD = 'a brand new passphrase';
const MINUTE = 60_000;

let sink: SmtpSink;
beforeAll(async () => {
  sink = await startSmtpSink();
});
afterAll(() => sink.close());

/** A fresh address nobody has used in this file. */
const fresh = (label: string) => `${label}-${crypto.randomUUID()}@example.com`;

/**
 * Attacks on the account mails (issue 17) that take one request at a time: links re-used, expired
 * or older than a password change, and the six holes of the attack review, each with the rule that
 * closes it. Real SMTP (the sink), both stores, a manual clock.
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`account recovery attacks [${dialect.name}]`, () => {
    let server: TestServer;
    let app: FastifyInstance;
    let rotor: FastifyInstance['rotor'];

    beforeEach(async () => {
      await app?.close();
      server = await startTestServer(dir, { ROTOR_SMTP_URL: sink.url }, dialect.name);
      app = server.app;
      rotor = app.rotor;
    });
    afterAll(() => app?.close());

    const post = (url: string, payload: object, token?: string) =>
      app.inject({
        method: 'POST',
        url,
        payload,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    /** The first mail with link `action` to `to` that `extra` accepts, after the background work. */
    const mailTo = async (
      to: string,
      action: string,
      extra: (mail: ReceivedMail) => boolean = () => true,
    ): Promise<ReceivedMail> => {
      await rotor.whenIdle();
      return sink.waitFor((m) => m.to === to && m.action === action && extra(m));
    };
    const mailsTo = (to: string, action?: string) =>
      sink.mails.filter((m) => m.to === to && (action === undefined || m.action === action));
    const resetLink = async (email: string, seen: string[] = []) => {
      expect((await post('/auth/password-reset', { email })).statusCode).toBe(202);
      return (await mailTo(email, 'reset-password', (m) => !seen.includes(m.token!))).token!;
    };
    const confirmReset = (token: string, newPassword = NEW_PASSWORD) =>
      post('/auth/password-reset/confirm', { token, newPassword });
    /** Whether the token (as mailed) names a live row of `purpose` in the store. */
    const live = async (token: string, purpose: 'password_reset' | 'email_change') =>
      (await rotor.store.findEmailToken(
        createHash('sha256').update(token).digest('base64url'),
        purpose,
        server.clock.now(),
      )) !== undefined;

    it('a reset link works once: used, it is invalid_link', async () => {
      const email = await registerUser(app, fresh('reuse'));
      const token = await resetLink(email);
      expect((await confirmReset(token)).statusCode).toBe(200);
      const again = await confirmReset(token, 'yet another passphrase');
      expect(again.statusCode).toBe(400);
      expect(again.json().error).toBe('invalid_link');
      expect((await post('/auth/login', { email, password: NEW_PASSWORD })).statusCode).toBe(200);
    });

    it('a reset link is invalid_link 30 minutes on', async () => {
      const email = await registerUser(app, fresh('expired'));
      const token = await resetLink(email);
      server.clock.advance(30 * MINUTE + 1);
      const expired = await confirmReset(token);
      expect(expired.statusCode).toBe(400);
      expect(expired.json().error).toBe('invalid_link');
      expect((await post('/auth/login', { email, password: PASSWORD })).statusCode).toBe(200);
    });

    it('a reset link mailed before a password change is invalid_link after it', async () => {
      const email = await registerUser(app, fresh('changed'));
      const token = await resetLink(email);
      const { body } = await login(app, email);
      const changed = await post(
        '/auth/password',
        { currentPassword: PASSWORD, newPassword: 'changed before the link was used' },
        body.accessToken,
      );
      expect(changed.statusCode).toBe(204);
      expect((await confirmReset(token)).json().error).toBe('invalid_link');
    });

    it('bug 1: a password reset or change voids a pending email change (the hijacker’s confirmation link dies)', async () => {
      for (const way of ['reset', 'change'] as const) {
        const owner = await registerUser(app, fresh(`owner-${way}`));
        // The hijacker holds a session and knows the password: asks to move the account.
        const hijacker = (await login(app, owner)).body;
        const thief = fresh(`thief-${way}`);
        const asked = await post(
          '/auth/email',
          { newEmail: thief, password: PASSWORD },
          hijacker.accessToken,
        );
        expect(asked.statusCode).toBe(202);
        const confirm = await mailTo(thief, 'confirm-email');
        expect(await live(confirm.token!, 'email_change')).toBe(true);
        // The owner takes the account back with a new password, before the thief confirms.
        if (way === 'reset') {
          expect((await confirmReset(await resetLink(owner))).statusCode).toBe(200);
        } else {
          const { body } = await login(app, owner);
          const changed = await post(
            '/auth/password',
            { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
            body.accessToken,
          );
          expect(changed.statusCode).toBe(204);
        }
        expect(await live(confirm.token!, 'email_change')).toBe(false);
        const stolen = await post('/auth/email/confirm', { token: confirm.token });
        expect(stolen.statusCode).toBe(400);
        expect(stolen.json().error).toBe('invalid_link');
        expect((await rotor.findUserByEmail(owner))?.email).toBe(owner);
        expect(await rotor.findUserByEmail(thief)).toBeUndefined();
      }
    });

    it('bug 2: while its undo link lives, the old address stays reserved (sign-up, a change to it, a confirmation of one)', async () => {
      const old = fresh('old');
      // Another user asks to move to the address while nobody has it: a confirmation link waits.
      const other = await registerUser(app, fresh('other'));
      const otherSession = (await login(app, other)).body;
      await post('/auth/email', { newEmail: old, password: PASSWORD }, otherSession.accessToken);
      const othersConfirm = await mailTo(old, 'confirm-email');

      // The owner has the address, and moves away from it: the undo link goes to the old address.
      await registerUser(app, old);
      const owner = (await login(app, old)).body;
      const moved = fresh('moved');
      await post('/auth/email', { newEmail: moved, password: PASSWORD }, owner.accessToken);
      const confirm = await mailTo(moved, 'confirm-email');
      const undo = await mailTo(old, 'undo-email-change');
      expect((await post('/auth/email/confirm', { token: confirm.token })).statusCode).toBe(200);
      expect(await rotor.findUserByEmail(old)).toBeUndefined();

      // Sign-up with the old address: the answer for a taken address.
      const signUp = await post('/auth/register', { email: old, password: PASSWORD });
      expect(signUp.statusCode).toBe(409);
      expect(signUp.json().error).toBe('email_taken');
      // The other user's link, mailed before, cannot take it.
      const taken = await post('/auth/email/confirm', { token: othersConfirm.token });
      expect(taken.statusCode).toBe(409);
      expect(taken.json().error).toBe('email_taken');
      // A third user asking for it now: 202 as ever, and no confirmation link is made.
      const third = await registerUser(app, fresh('third'));
      const thirdSession = (await login(app, third)).body;
      const asked = await post(
        '/auth/email',
        { newEmail: old, password: PASSWORD },
        thirdSession.accessToken,
      );
      expect(asked.statusCode).toBe(202);
      await rotor.whenIdle();
      await sink.waitFor((m) => m.to === old && m.subject !== '' && !m.token);
      expect(mailsTo(old, 'confirm-email')).toHaveLength(1);

      // The owner's undo still works: the address is the owner's again.
      const undone = await post('/auth/email/undo', { token: undo.token });
      expect(undone.statusCode).toBe(200);
      expect(undone.json().user.email).toBe(old);
      expect((await post('/auth/login', { email: old, password: PASSWORD })).statusCode).toBe(200);
    });

    it('bug 2: the reservation ends with the undo link (7 days)', async () => {
      const old = await registerUser(app, fresh('expiring'));
      const owner = (await login(app, old)).body;
      const moved = fresh('moved-for-good');
      await post('/auth/email', { newEmail: moved, password: PASSWORD }, owner.accessToken);
      const confirm = await mailTo(moved, 'confirm-email');
      const undo = await mailTo(old, 'undo-email-change');
      expect((await post('/auth/email/confirm', { token: confirm.token })).statusCode).toBe(200);
      expect((await post('/auth/register', { email: old, password: PASSWORD })).statusCode).toBe(
        409,
      );
      server.clock.advance(7 * 24 * 60 * MINUTE + 1);
      expect((await post('/auth/register', { email: old, password: PASSWORD })).statusCode).toBe(
        201,
      );
      expect((await post('/auth/email/undo', { token: undo.token })).statusCode).toBe(400);
    });

    it('bug 3: POST /auth/email counts against the new address’s budget (5 mails an hour), shared with resets', async () => {
      const victim = fresh('flooded');
      const attacker = await registerUser(app, fresh('flooder'));
      const { body } = await login(app, attacker);
      const statuses: number[] = [];
      // Two reset requests for the victim's address, then changes to it.
      for (let i = 0; i < 2; i += 1) {
        statuses.push((await post('/auth/password-reset', { email: victim })).statusCode);
      }
      for (let i = 0; i < 5; i += 1) {
        const asked = await post(
          '/auth/email',
          { newEmail: victim, password: PASSWORD },
          body.accessToken,
        );
        statuses.push(asked.statusCode);
        if (asked.statusCode === 429) expect(asked.json().error).toBe('rate_limited');
      }
      expect(statuses).toEqual([202, 202, 202, 202, 202, 429, 429]);
      await rotor.whenIdle();
      await sink.waitFor(() => mailsTo(victim).length >= 3);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(mailsTo(victim, 'confirm-email')).toHaveLength(3);
      // An hour on, the address has its budget again.
      server.clock.advance(61 * MINUTE);
      const later = await post(
        '/auth/email',
        { newEmail: victim, password: PASSWORD },
        (await login(app, attacker)).body.accessToken,
      );
      expect(later.statusCode).toBe(202);
    });

    it('bug 4: an address with , ; : < > ( ) " [ ] \\ or whitespace is 400 invalid_request on every route that takes one', async () => {
      const owner = await registerUser(app, fresh('parser'));
      const { body } = await login(app, owner);
      const spellings = [
        'victim@example.com,attacker@evil.test',
        'victim@example.com;attacker@evil.test',
        'attacker@evil.test, victim@example.com',
        'Victim <attacker@evil.test>',
        'a<attacker@evil.test>@example.com',
        '"attacker@evil.test"@example.com',
        'victim(attacker@evil.test)@example.com',
        'victim@[127.0.0.1]',
        'vic:tim@example.com',
        'vic\\tim@example.com',
        'vic tim@example.com',
        'victim@example.com attacker@evil.test',
        'vic\u00a0tim@example.com',
        'vic\u2003tim@example.com',
        'victim@example.com\u3000attacker@evil.test',
      ];
      for (const address of spellings) {
        const answers = [
          ['email', await post('/auth/register', { email: address, password: PASSWORD })],
          ['email', await post('/auth/password-reset', { email: address })],
          ['email', await post('/auth/verify-email/send', { email: address })],
          [
            'newEmail',
            await post('/auth/email', { newEmail: address, password: PASSWORD }, body.accessToken),
          ],
        ] as const;
        for (const [field, answer] of answers) {
          expect(answer.statusCode, `${address} → ${answer.body}`).toBe(400);
          expect(answer.headers['content-type']).toMatch(/^application\/json/);
          expect(answer.json()).toMatchObject({
            error: 'invalid_request',
            message: expect.any(String),
            details: { field },
          });
        }
      }
      await rotor.whenIdle();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(sink.mails.filter((m) => /evil\.test/.test(m.to))).toEqual([]);
      // Plain addresses still work, trimmed and lower-cased as before.
      expect(
        (
          await post('/auth/register', {
            email: `  ${fresh('Plain.Name+tag')}  `,
            password: PASSWORD,
          })
        ).statusCode,
      ).toBe(201);
    });

    it('bug 5: a confirm with an unknown, malformed, used, replaced or expired token spends no password hash', async () => {
      const email = await registerUser(app, fresh('cpu'));
      const used = await resetLink(email);
      const hash = vi.spyOn(rotor.accounts.passwords, 'hash');
      try {
        expect((await confirmReset(used)).statusCode).toBe(200);
        expect(hash).toHaveBeenCalledTimes(1);
        const replaced = await resetLink(email, [used]);
        const newer = await resetLink(email, [used, replaced]);
        server.clock.advance(31 * MINUTE);
        hash.mockClear();
        for (const token of [
          randomBytes(32).toString('base64url'),
          'not a token',
          used,
          replaced,
          newer,
        ]) {
          const refused = await confirmReset(token);
          expect(refused.statusCode).toBe(400);
          expect(refused.json().error).toBe('invalid_link');
        }
        expect(hash).not.toHaveBeenCalled();
      } finally {
        hash.mockRestore();
      }
    });
  });
}
