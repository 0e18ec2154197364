// Attack review of 3f13925 (issue 19, the one-statement refresh). The statement's path admits the
// per-session budget BEFORE it knows what the token is; the full transaction (`decide`) admits only
// on the branches that hand out tokens, so re-use detection, a revoked session and a DPoP key
// mismatch are answered whatever the budget. Every expectation below is what `decide` answers.
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createRotor, createStore, loadConfig, ManualClock, type Rotor } from '@rotor/server';
import { codeOf, newDatabaseUrl, PASSWORD, POSTGRES_URL, tempDir } from '../helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const CLIENT = { ip: '203.0.113.1', userAgent: 'vitest' };
const THIEF = { ip: '198.51.100.66', userAgent: 'curl' };

async function rotorOn(url: string, clock: ManualClock) {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const store = await createStore({ dialect: 'postgres', pool });
  const rotor = await createRotor(loadConfig({ ROTOR_DATABASE_URL: url }), { store, clock });
  return {
    rotor,
    async close() {
      await rotor.close();
      await pool.end();
    },
  };
}

/** How many refresh tokens are live and how many sessions revoked, read from the database. */
async function tokenState(url: string): Promise<{ live: number; revoked: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ n: string }>(
    'select count(*) as n from user_tokens where rotated_at is null',
  );
  const revoked = await client.query<{ n: string }>(
    'select count(*) as n from sessions where revoked_at is not null',
  );
  await client.end();
  return { live: Number(rows[0]!.n), revoked: Number(revoked.rows[0]!.n) };
}

/** Spends the session's per-session budget on `rotor` (30 a minute) with the chain from `token`. */
async function spendBudget(
  rotor: Rotor,
  token: string,
  clock: ManualClock,
  info = CLIENT,
  count = 30,
) {
  let refreshToken = token;
  for (let i = 0; i < count; i += 1) {
    refreshToken = (await rotor.refresh({ refreshToken, ...info })).refreshToken;
    clock.advance(100);
  }
  return refreshToken;
}

describe.skipIf(POSTGRES_URL === '')('one-statement refresh: admission before the decision', () => {
  it("re-use of a token rotated on another instance still revokes the session while the thief keeps this instance's budget spent", async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const clock = new ManualClock(Date.now());
    const a = await rotorOn(url, clock);
    const b = await rotorOn(url, clock);
    try {
      await a.rotor.register({ email: 'victim@example.com', password: PASSWORD });
      // The victim signs in on A: A remembers T0's session (issued-refresh-tokens.ts).
      const t0 = (
        await a.rotor.login({
          email: 'victim@example.com',
          password: PASSWORD,
          deviceName: null,
          delivery: 'body',
          ...CLIENT,
        })
      ).refreshToken;
      // The thief copied T0 and uses it first, on B (the transaction: B does not know T0).
      let thief = (await b.rotor.refresh({ refreshToken: t0, ...THIEF })).refreshToken;
      clock.advance(11_000); // past the 10 s grace window
      // The thief refreshes its own chain on A 30 times in a minute: A's per-session budget is spent.
      thief = await spendBudget(a.rotor, thief, clock, THIEF);
      // The victim presents T0, rotated 14 s ago: DESIGN.md, "rotated outside the grace window":
      // revoke the session, 401 refresh_token_reused (what `decide` answers, budget or not).
      const victim = await codeOf(a.rotor.refresh({ refreshToken: t0, ...CLIENT }));
      const thiefStillIn = await codeOf(
        b.rotor.refresh({ refreshToken: thief, ...THIEF }).then(() => 'ok'),
      );
      expect({ victim, thiefStillIn }).toEqual({
        victim: 'refresh_token_reused',
        thiefStillIn: 'session_revoked',
      });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the same re-use, answered by the transaction alone (B never issued T0): revoked at once (control)', async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const clock = new ManualClock(Date.now());
    const a = await rotorOn(url, clock);
    const b = await rotorOn(url, clock);
    try {
      await a.rotor.register({ email: 'victim2@example.com', password: PASSWORD });
      const t0 = (
        await a.rotor.login({
          email: 'victim2@example.com',
          password: PASSWORD,
          deviceName: null,
          delivery: 'body',
          ...CLIENT,
        })
      ).refreshToken;
      const thief = (await b.rotor.refresh({ refreshToken: t0, ...THIEF })).refreshToken;
      clock.advance(11_000);
      // B counted the thief's first refresh: 29 more spend its budget.
      await spendBudget(b.rotor, thief, clock, THIEF, 29);
      // B's budget is spent too, but B takes the transaction for T0 (not in its memo): re-use.
      expect(await codeOf(b.rotor.refresh({ refreshToken: t0, ...CLIENT }))).toBe(
        'refresh_token_reused',
      );
      // One live token row left, the session revoked.
      expect(await tokenState(url)).toEqual({ live: 1, revoked: 1 });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a session signed out on another instance answers session_revoked, not rate_limited', async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const clock = new ManualClock(Date.now());
    const a = await rotorOn(url, clock);
    const b = await rotorOn(url, clock);
    try {
      await a.rotor.register({ email: 'out@example.com', password: PASSWORD });
      const grant = await a.rotor.login({
        email: 'out@example.com',
        password: PASSWORD,
        deviceName: null,
        delivery: 'body',
        ...CLIENT,
      });
      // 30 refreshes on A: A's budget for the session is spent; `last` is A-issued (remembered).
      const last = await spendBudget(a.rotor, grant.refreshToken, clock);
      const principal = await a.rotor.authenticate(grant.accessToken);
      // The user signs the session out on B (e.g. "this is not my device").
      expect(await b.rotor.logoutSession(principal.session.id)).toBe(true);
      // `decide` answers session_revoked (DESIGN.md: revoked first, whatever the budget).
      expect(await codeOf(a.rotor.refresh({ refreshToken: last, ...CLIENT }))).toBe(
        'session_revoked',
      );
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a DPoP thief without the key is refused as invalid_dpop_proof and recorded, even when the owner's budget is spent", async () => {
    const url = await newDatabaseUrl('postgres', dir);
    const clock = new ManualClock(Date.now());
    const a = await rotorOn(url, clock);
    try {
      await a.rotor.register({ email: 'bound@example.com', password: PASSWORD });
      const owner = { ...CLIENT, dpopJkt: 'owner-key-thumbprint' };
      const grant = await a.rotor.login({
        email: 'bound@example.com',
        password: PASSWORD,
        deviceName: null,
        delivery: 'body',
        ...owner,
      });
      const live = await spendBudget(a.rotor, grant.refreshToken, clock, owner);
      // The thief copied the live token but not the key (docs/api.md, DPoP: 401 invalid_dpop_proof,
      // nothing changes, a dpop_key_mismatch event in the owner's audit log).
      const refused = await codeOf(a.rotor.refresh({ refreshToken: live, ...THIEF }));
      const principal = await a.rotor.authenticate(grant.accessToken);
      const events = await a.rotor.listEvents(principal.user.id);
      expect({
        refused,
        recorded: events.items.some((e) => e.type === 'dpop_key_mismatch'),
      }).toEqual({ refused: 'invalid_dpop_proof', recorded: true });
    } finally {
      await a.close();
    }
  });
});
