import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createRotor,
  loadConfig,
  ManualClock,
  RotorError,
  type KyselyStore,
  type Rotor,
  type TokenGrant,
} from '@rotor/server';
import { newDatabaseUrl, PASSWORD, tempDir } from '../helpers.js';

/**
 * Random sequences of login, refresh (with the newest or an older token), logout, revoke and clock
 * jumps, run against Rotor and against a small model of DESIGN.md's rules. After every step the
 * outcome must be the model's, and the invariants must hold in the database: at most one live
 * refresh token per session; a revoked session never comes back; no token outlives its session's
 * maximum lifetime.
 */
const { dir, cleanup } = tempDir();
afterAll(cleanup);

const SECOND = 1_000;
const IDLE = 3_600 * SECOND;
const MAX_AGE = 3 * IDLE;
const GRACE = 10 * SECOND;
const client = { ip: '192.0.2.1', userAgent: 'model' };

interface ModelSession {
  id: string;
  createdAt: number;
  idleEndsAt: number;
  /** Every refresh token it was given, oldest first, with when each was rotated. */
  tokens: { token: string; rotatedAt: number | null }[];
  revoked: boolean;
  accessToken: string;
}

type Command =
  | { kind: 'login' }
  | { kind: 'refresh'; session: number; age: number }
  | { kind: 'logout'; session: number }
  | { kind: 'revoke'; session: number }
  | { kind: 'authenticate'; session: number }
  | { kind: 'wait'; ms: number };

// Odd durations, so that sums of them do not land exactly on a boundary (grace, idle, maximum).
const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'login' as const }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('refresh' as const),
      session: fc.nat(3),
      age: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.nat(3), weight: 1 }),
    }),
    weight: 5,
  },
  { arbitrary: fc.record({ kind: fc.constant('logout' as const), session: fc.nat(3) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('revoke' as const), session: fc.nat(3) }), weight: 1 },
  {
    arbitrary: fc.record({ kind: fc.constant('authenticate' as const), session: fc.nat(3) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('wait' as const),
      ms: fc.constantFrom(1_001, 7_003, 31_013, 1_200_007, 4_200_011),
    }),
    weight: 3,
  },
);

async function outcome<T>(promise: Promise<T>): Promise<{ code: string; value?: T }> {
  try {
    return { code: 'ok', value: await promise };
  } catch (error) {
    if (error instanceof RotorError) return { code: error.code };
    throw error;
  }
}

async function run(commands: Command[]): Promise<void> {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const rotor: Rotor = await createRotor(
    loadConfig({
      ROTOR_DATABASE_URL: await newDatabaseUrl('sqlite', dir),
      ROTOR_REFRESH_TTL: `${IDLE / SECOND}s`,
      ROTOR_SESSION_MAX_AGE: `${MAX_AGE / SECOND}s`,
      ROTOR_REFRESH_GRACE: `${GRACE / SECOND}s`,
      ROTOR_RATE_LIMIT: 'off',
    }),
    { clock },
  );
  try {
    const user = await rotor.register({ email: 'model@example.com', password: PASSWORD });
    const sessions: ModelSession[] = [];
    const ended = (s: ModelSession) => clock.now() >= Math.min(s.idleEndsAt, s.createdAt + MAX_AGE);
    const withinLifetime = (s: ModelSession, grant: TokenGrant) => {
      expect(grant.accessExpiresAt * 1000).toBeLessThanOrEqual(s.createdAt + MAX_AGE);
      expect(grant.refreshExpiresAt * 1000).toBeLessThanOrEqual(s.createdAt + MAX_AGE);
    };

    for (const step of commands) {
      const s =
        'session' in step ? sessions[step.session % Math.max(1, sessions.length)] : undefined;
      if ('session' in step && !s) continue;
      switch (step.kind) {
        case 'login': {
          if (sessions.length >= 3) break;
          const grant = await rotor.login({
            email: 'model@example.com',
            password: PASSWORD,
            deviceName: null,
            delivery: 'body',
            ...client,
          });
          sessions.push({
            id: grant.session.id,
            createdAt: clock.now(),
            idleEndsAt: grant.refreshExpiresAt * 1000,
            tokens: [{ token: grant.refreshToken, rotatedAt: null }],
            revoked: false,
            accessToken: grant.accessToken,
          });
          break;
        }
        case 'refresh': {
          const index = Math.max(0, s!.tokens.length - 1 - step.age);
          const presented = s!.tokens[index]!;
          const newest = index === s!.tokens.length - 1;
          const result = await outcome(rotor.refresh({ refreshToken: presented.token, ...client }));
          let expected: string;
          if (s!.revoked) expected = 'session_revoked';
          else if (ended(s!)) expected = 'session_expired';
          else if (newest) expected = 'ok';
          else if (clock.now() - presented.rotatedAt! < GRACE) {
            // Inside the window of its own rotation: the live tip of its chain (issue 15, item 1).
            expected = 'ok (grace)';
          } else expected = 'refresh_token_reused';
          expect(result.code === 'ok' && !newest ? 'ok (grace)' : result.code).toBe(expected);
          if (expected === 'refresh_token_reused') s!.revoked = true;
          if (result.value) {
            withinLifetime(s!, result.value);
            s!.accessToken = result.value.accessToken;
            if (newest) {
              presented.rotatedAt = clock.now();
              s!.tokens.push({ token: result.value.refreshToken, rotatedAt: null });
              s!.idleEndsAt = result.value.refreshExpiresAt * 1000;
            } else {
              // A racer inside the grace window gets the newest token of the session: its chain's tip.
              expect(result.value.refreshToken).toBe(s!.tokens.at(-1)!.token);
            }
          }
          break;
        }
        case 'logout':
          await rotor.logoutWithRefreshToken(s!.tokens.at(-1)!.token);
          s!.revoked = true;
          break;
        case 'revoke':
          await rotor.revokeSession(user.id, s!.id);
          s!.revoked = true;
          break;
        case 'authenticate': {
          const result = await outcome(rotor.authenticate(s!.accessToken));
          if (s!.revoked) expect(result.code).not.toBe('ok');
          break;
        }
        case 'wait':
          clock.advance(step.ms);
          break;
      }

      // The invariants, read from the database after every step.
      const db = (rotor.store as KyselyStore).db;
      for (const m of sessions) {
        const live = await db
          .selectFrom('user_tokens')
          .select('token_hash')
          .where('session_id', '=', m.id)
          .where('rotated_at', 'is', null)
          .where('expires_at', '>', clock.now())
          .execute();
        expect(live.length).toBeLessThanOrEqual(1);
        const row = await rotor.store.findSession(m.id);
        if (m.revoked) {
          expect(row!.revoked_at).not.toBeNull();
          for (const t of m.tokens) {
            expect(
              (await outcome(rotor.refresh({ refreshToken: t.token, ...client }))).code,
            ).not.toBe('ok');
          }
        }
        expect(row!.max_expires_at).toBe(m.createdAt + MAX_AGE);
      }
    }
  } finally {
    await rotor.close();
  }
}

describe('session rules against a model (fast-check)', () => {
  it('every random sequence of logins, refreshes, re-use, logouts, revocations and clock jumps follows the model', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .array(command, { minLength: 1, maxLength: 25 })
          .map((cs) => [{ kind: 'login' } as Command, ...cs]),
        run,
      ),
      { numRuns: 40 },
    );
  }, 120_000);
});
