import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { startSmtpSink, type SmtpSink } from '../smtp-sink.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

let sink: SmtpSink;
beforeAll(async () => {
  sink = await startSmtpSink();
});
afterAll(() => sink.close());

const fresh = (label: string) => `${label}-${crypto.randomUUID()}@example.com`;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/**
 * The account mails' forms find no accounts (issue 17): a request for a known address and for an
 * unknown one get the same status and body, and the answer takes the same time (the look-up, the
 * token and the mail come after it). Both stores, real SMTP, the limits on (raised, so that thirty
 * samples of one address are not refused: the limit's own work is part of every answer).
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`account mail enumeration [${dialect.name}]`, () => {
    let server: TestServer;
    let app: FastifyInstance;
    beforeAll(async () => {
      server = await startTestServer(
        dir,
        {
          ROTOR_SMTP_URL: sink.url,
          ROTOR_RATE_LIMIT_ACCOUNT_MAIL: '100000/1h',
          ROTOR_RATE_LIMIT_ACCOUNT_MAIL_ADDRESS: '100000/15m',
        },
        dialect.name,
      );
      app = server.app;
    });
    afterAll(() => app?.close());

    const post = (url: string, payload: object, token?: string) =>
      app.inject({
        method: 'POST',
        url,
        payload,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });

    it('the same status and body for a known, a verified, a password-less and an unknown address', async () => {
      const known = await registerUser(app, fresh('known'));
      const verified = await registerUser(app, fresh('verified'));
      await app.rotor.whenIdle();
      const link = await sink.waitFor((m) => m.to === verified && m.action === 'verify-email');
      expect((await post('/auth/verify-email', { token: link.token })).statusCode).toBe(200);
      const external = (await app.rotor.createUser({ email: fresh('external') })).email;
      for (const url of ['/auth/password-reset', '/auth/verify-email/send']) {
        const answers = [];
        for (const email of [
          known,
          verified,
          external,
          fresh('unknown'),
          ` ${known.toUpperCase()} `,
        ]) {
          answers.push(await post(url, { email }));
        }
        for (const answer of answers) {
          expect(answer.statusCode).toBe(202);
          expect(answer.body).toBe(answers[0]!.body);
          expect(answer.headers['content-type']).toBe(answers[0]!.headers['content-type']);
        }
      }
      // An email change to a taken address is answered like one to a free address.
      const { body } = await login(app, known);
      const toTaken = await post(
        '/auth/email',
        { newEmail: verified, password: PASSWORD },
        body.accessToken,
      );
      const toFree = await post(
        '/auth/email',
        { newEmail: fresh('free'), password: PASSWORD },
        body.accessToken,
      );
      expect(toTaken.statusCode).toBe(202);
      expect(toTaken.body).toBe(toFree.body);
    });

    it('a reset request for a known and for an unknown address take the same time (medians of interleaved samples)', async () => {
      const known = await registerUser(app, fresh('timed'));
      // One unknown address, asked for as often as the known one: both carry the same limit log.
      const unknown = fresh('nobody');
      const sample = async (email: string) => {
        const started = performance.now();
        const answer = await post('/auth/password-reset', { email });
        const ms = performance.now() - started;
        expect(answer.statusCode).toBe(202);
        // The background work (look-up, token, mail) of one sample must not load the next.
        await app.rotor.whenIdle();
        return ms;
      };
      for (let i = 0; i < 5; i += 1) {
        await sample(known);
        await sample(unknown);
      }
      const knownMs: number[] = [];
      const unknownMs: number[] = [];
      // Interleaved, alternating which goes first, so drift in load hits both alike.
      for (let i = 0; i < 40; i += 1) {
        if (i % 2) {
          knownMs.push(await sample(known));
          unknownMs.push(await sample(unknown));
        } else {
          unknownMs.push(await sample(unknown));
          knownMs.push(await sample(known));
        }
      }
      const ratio = median(knownMs) / median(unknownMs);
      console.info(
        `[${dialect.name}] reset answer: known ${median(knownMs).toFixed(2)} ms, unknown ${median(unknownMs).toFixed(2)} ms, ratio ${ratio.toFixed(2)}`,
      );
      // Generous, as other tests share the machine (unaffected runs measured 0.8 to 1.1): it
      // catches an answer that waits for a mail's delivery or a password hash. The look-up and the
      // token written before the answer measured about 1.4 here, inside this margin: that the
      // answer does not wait for them is what the code's structure (ctx.tasks) guarantees.
      expect(ratio).toBeGreaterThan(0.5);
      expect(ratio).toBeLessThan(2);
    }, 120_000);
  });
}
