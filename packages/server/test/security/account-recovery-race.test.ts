import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from '../helpers.js';
import { call, startRotorPair, type RotorProcess } from '../rotor-process.js';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '../smtp-sink.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

let sink: SmtpSink;
beforeAll(async () => {
  sink = await startSmtpSink();
});
afterAll(() => sink.close());

const fresh = (label: string) => `${label}-${crypto.randomUUID()}@example.com`;

/** The reset links mailed to `to`, once at least `count` have arrived (and a moment for strays). */
async function resetMails(to: string, count: number): Promise<ReceivedMail[]> {
  const mine = () => sink.mails.filter((m) => m.to === to && m.action === 'reset-password');
  await sink.waitFor(() => mine().length >= count, 15_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  return mine();
}

/**
 * The account mails under concurrency (issue 17): two `rotor serve` processes on one database
 * (PostgreSQL; on SQLite one process, the rule there), real sockets, real SMTP. The per-address
 * budget holds at any concurrency, a link is redeemed once however many sockets race for it, and
 * racing requests leave one live link of a kind ("void once a newer one is asked for").
 */
for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`account recovery races [${dialect.name}]`, () => {
    let instances: RotorProcess[] = [];
    let databaseUrl: string;
    beforeAll(async () => {
      databaseUrl = await newDatabaseUrl(dialect.name, dir);
      instances = await startRotorPair({
        ROTOR_DATABASE_URL: databaseUrl,
        ROTOR_SMTP_URL: sink.url,
        // Every request comes from 127.0.0.1: the per-client budgets are not what is tested here.
        ROTOR_RATE_LIMIT_ACCOUNT_MAIL_ADDRESS: '100000/15m',
        ROTOR_RATE_LIMIT_LOGIN_ADDRESS: '100000/15m',
        ROTOR_RATE_LIMIT_REGISTER: '100000/5m',
      });
    }, 60_000);
    afterAll(async () => {
      await Promise.all([...new Set(instances)].map((instance) => instance.stop()));
    });

    const post = (i: number, path: string, body: unknown) =>
      call(instances[i % 2]!.url, 'POST', path, { body, timeoutMs: 30_000 });
    const register = async (email: string) => {
      expect((await post(0, '/auth/register', { email, password: PASSWORD })).status).toBe(201);
      return email;
    };
    /** How many of `tokens` name a live reset link in the database (read directly). */
    const liveResets = async (tokens: string[]): Promise<number> => {
      const hashes = tokens.map((t) => createHash('sha256').update(t).digest('base64url'));
      const now = Date.now();
      if (dialect.name === 'sqlite') {
        const db = new Database(databaseUrl.slice('sqlite:'.length), { readonly: true });
        try {
          const rows = db
            .prepare(
              `select token_hash from email_tokens where purpose = 'password_reset' and expires_at > ?`,
            )
            .all(now) as { token_hash: string }[];
          return rows.filter((r) => hashes.includes(r.token_hash)).length;
        } finally {
          db.close();
        }
      }
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query(
          `select count(*)::int as n from email_tokens
            where purpose = 'password_reset' and expires_at > $1 and token_hash = any($2)`,
          [now, hashes],
        );
        return (rows[0] as { n: number }).n;
      } finally {
        await client.end();
      }
    };

    it('100 concurrent reset requests for one address over both instances: exactly 5 accepted, 95 rate limited, 5 mails, one live link', async () => {
      const email = await register(fresh('hundred'));
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) => post(i, '/auth/password-reset', { email })),
      );
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 202)).toHaveLength(5);
      expect(statuses.filter((s) => s === 429)).toHaveLength(95);
      for (const answer of answers.filter((a) => a.status === 429)) {
        expect(answer.body.error).toBe('rate_limited');
      }
      const mails = await resetMails(email, 5);
      expect(mails).toHaveLength(5);
      expect(await liveResets(mails.map((m) => m.token!))).toBe(1);
      // An address nobody has is limited exactly alike.
      const nobody = fresh('nobody');
      const unknown = await Promise.all(
        Array.from({ length: 100 }, (_, i) => post(i, '/auth/password-reset', { email: nobody })),
      );
      expect(unknown.filter((a) => a.status === 202)).toHaveLength(5);
      expect(unknown.filter((a) => a.status === 429)).toHaveLength(95);
    }, 60_000);

    it('one reset link confirmed over 8 sockets at once across both instances: exactly one 200, and its password is the one set', async () => {
      for (let round = 0; round < 4; round += 1) {
        const email = await register(fresh(`confirm-${round}`));
        expect((await post(round, '/auth/password-reset', { email })).status).toBe(202);
        const [mail] = await resetMails(email, 1);
        const answers = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            post(i, '/auth/password-reset/confirm', {
              token: mail!.token,
              newPassword: `new passphrase number ${i}`,
            }).then((answer) => ({ i, answer })),
          ),
        );
        const won = answers.filter(({ answer }) => answer.status === 200);
        expect(won).toHaveLength(1);
        for (const { answer } of answers.filter(({ answer }) => answer.status !== 200)) {
          expect(answer.status).toBe(400);
          expect(answer.body.error).toBe('invalid_link');
        }
        const winner = `new passphrase number ${won[0]!.i}`;
        expect((await post(round, '/auth/login', { email, password: winner })).status).toBe(200);
        const loser = `new passphrase number ${(won[0]!.i + 1) % 8}`;
        expect((await post(round, '/auth/login', { email, password: loser })).status).toBe(401);
      }
    }, 60_000);

    it('racing reset requests leave exactly one live link (6 accounts × 5 requests at once)', async () => {
      const emails = await Promise.all(
        Array.from({ length: 6 }, (_, i) => register(fresh(`issue-${i}`))),
      );
      const answers = await Promise.all(
        emails.flatMap((email) =>
          Array.from({ length: 5 }, (_, i) => post(i, '/auth/password-reset', { email })),
        ),
      );
      expect(answers.every((a) => a.status === 202)).toBe(true);
      const live: number[] = [];
      for (const email of emails) {
        const mails = await resetMails(email, 5);
        live.push(await liveResets(mails.map((m) => m.token!)));
      }
      expect(live).toEqual([1, 1, 1, 1, 1, 1]);
    }, 60_000);
  });
}
