// Attack review of 3f13925 over real HTTP, two `rotor serve` processes on one PostgreSQL: a thief
// who used a copied refresh token first on instance B keeps the session's per-instance refresh
// budget spent on A; the victim's re-use of the original token on A (which issued it, so takes the
// one-statement path) is answered 429 and the session is never revoked. `decide` answers 401
// refresh_token_reused and revokes the session whatever the budget.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from '../helpers.js';
import { call, startRotorProcess, type RotorProcess } from '../rotor-process.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const postgres = DIALECTS.find((d) => d.name === 'postgres')!;

describe.skipIf(!postgres.available)(
  'one-statement refresh over HTTP: re-use behind a spent budget',
  () => {
    let a: RotorProcess;
    let b: RotorProcess;
    beforeAll(async () => {
      const env = {
        ROTOR_DATABASE_URL: await newDatabaseUrl('postgres', dir),
        ROTOR_REFRESH_GRACE: '1s',
        ROTOR_ISSUER: 'https://auth.example.test',
      };
      a = await startRotorProcess(env);
      b = await startRotorProcess(env);
    });
    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it('the victim presenting its rotated token on A after the grace window revokes the session', async () => {
      const email = 'victim-http@example.com';
      await call(a.url, 'POST', '/auth/register', { body: { email, password: PASSWORD } });
      const login = await call(a.url, 'POST', '/auth/login', {
        body: { email, password: PASSWORD },
        headers: { 'token-delivery': 'body' },
      });
      const t0 = login.body.refreshToken as string;
      // The thief's first use of the copied token lands on B.
      const first = await call(b.url, 'POST', '/auth/refresh', { body: { refreshToken: t0 } });
      expect(first.status).toBe(200);
      let thief = first.body.refreshToken as string;
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // past the grace window
      // The thief spends A's per-session budget (30 a minute) with its own chain.
      for (let i = 0; i < 30; i += 1) {
        const r = await call(a.url, 'POST', '/auth/refresh', { body: { refreshToken: thief } });
        expect(r.status).toBe(200);
        thief = r.body.refreshToken as string;
      }
      // The victim's client refreshes with T0 on A, where it signed in (sticky routing), and again.
      const victim = [];
      for (let i = 0; i < 3; i += 1) {
        const r = await call(a.url, 'POST', '/auth/refresh', { body: { refreshToken: t0 } });
        victim.push(`${r.status} ${String(r.body.error)}`);
      }
      const thiefAfter = await call(b.url, 'POST', '/auth/refresh', {
        body: { refreshToken: thief },
      });
      expect({ victim, thiefAfter: thiefAfter.status }).toEqual({
        victim: ['401 refresh_token_reused', '401 session_revoked', '401 session_revoked'],
        thiefAfter: 401,
      });
    });
  },
);
