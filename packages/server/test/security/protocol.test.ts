import { existsSync, linkSync, mkdtempSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, newDatabaseUrl, PASSWORD, tempDir } from '../helpers.js';
import { call, ROTOR_BIN, startRotorProcess, type RotorProcess } from '../rotor-process.js';

/**
 * Issue 15: the rotation protocol's failures the model found (docs/protocol.md), each played
 * against the real code: two `rotor serve` processes on one PostgreSQL, a lock held from outside
 * to stop a transaction between two statements, a failing statement standing for a crash, and an
 * instance whose wall clock lags (libfaketime). Each test names the model's property it stands
 * beside.
 */
const { dir, cleanup } = tempDir();
afterAll(cleanup);

const postgres = DIALECTS.find((d) => d.name === 'postgres')!;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const ISSUER = { ROTOR_ISSUER: 'https://auth.example.test' };

async function signIn(base: string, email: string) {
  const registered = await call(base, 'POST', '/auth/register', {
    body: { email, password: PASSWORD },
  });
  expect(registered.status).toBe(201);
  const login = await call(base, 'POST', '/auth/login', {
    body: { email, password: PASSWORD },
    headers: { 'token-delivery': 'body' },
  });
  expect(login.status).toBe(200);
  return login.body as { accessToken: string; refreshToken: string; sessionId: string };
}

const refresh = (base: string, refreshToken: string) =>
  call(base, 'POST', '/auth/refresh', { body: { refreshToken } });

describe.skipIf(!postgres.available)('the refresh protocol on two instances [postgres]', () => {
  let url: string;
  let a: RotorProcess;
  let b: RotorProcess;
  let db: pg.Client;
  beforeAll(async () => {
    url = await newDatabaseUrl('postgres', dir);
    // Rate limits off: the races below are honest clients, not guesses.
    const env = { ...ISSUER, ROTOR_DATABASE_URL: url, ROTOR_RATE_LIMIT: 'off' };
    a = await startRotorProcess(env);
    b = await startRotorProcess(env);
    db = new pg.Client({ connectionString: url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('honest_tabs_stay_signed_in: a tab with T0 arriving after T0 → T1 → T2 gets T2, on the other instance (item 1)', async () => {
    const first = await signIn(a.url, 'tabs@example.com');
    const t1 = await refresh(a.url, first.refreshToken);
    const t2 = await refresh(a.url, t1.body.refreshToken as string);
    expect([t1.status, t2.status]).toEqual([200, 200]);
    const sibling = await refresh(b.url, first.refreshToken);
    expect(sibling.status).toBe(200);
    expect(sibling.body.refreshToken).toBe(t2.body.refreshToken);
    // The session is alive, and the tip still rotates.
    const me = await call(b.url, 'GET', '/auth/me', { token: sibling.body.accessToken as string });
    expect(me.status).toBe(200);
    expect((await refresh(b.url, t2.body.refreshToken as string)).status).toBe(200);
  });

  it('no_refresh_after_revocation: a rotation stopped between its read and its update cannot commit after a logout that committed (item 4)', async () => {
    const tokens = await signIn(a.url, 'ordered@example.com');
    // Hold the token's row from outside: the refresh reads, then waits at its conditional update.
    await db.query('begin');
    const hash = (
      await db.query<{ token_hash: string }>(
        `select token_hash from user_tokens t join sessions s on s.id = t.session_id
          where s.id = $1 and t.rotated_at is null for update of t`,
        [tokens.sessionId],
      )
    ).rows[0]!.token_hash;
    expect(hash).toBeTruthy();
    let refreshedAt = 0;
    const refreshing = refresh(a.url, tokens.refreshToken).then((answer) => {
      refreshedAt = performance.now();
      return answer;
    });
    await sleep(300);
    let loggedOutAt = 0;
    const loggingOut = call(b.url, 'POST', '/auth/logout', {
      body: { refreshToken: tokens.refreshToken },
    }).then((answer) => {
      loggedOutAt = performance.now();
      return answer;
    });
    await sleep(300);
    // Before the fix the logout has committed and answered by now, the refresh still waiting.
    const logoutDoneWhileRefreshWaited = loggedOutAt !== 0;
    await db.query('rollback');
    const [refreshed, loggedOut] = await Promise.all([refreshing, loggingOut]);
    expect(loggedOut.status).toBe(204);
    // The refresh may win (it committed first, then the logout ended the session) or lose
    // (session_revoked), but never succeed after the revocation committed.
    if (refreshed.status === 200) {
      expect(logoutDoneWhileRefreshWaited).toBe(false);
      expect(loggedOutAt).toBeGreaterThanOrEqual(refreshedAt - 50);
    } else {
      expect(refreshed.body.error).toBe('session_revoked');
    }
    // Either way the session is over, for the tokens the refresh handed out too.
    if (refreshed.status === 200) {
      const me = await call(a.url, 'GET', '/auth/me', {
        token: refreshed.body.accessToken as string,
      });
      expect(me.status).toBe(401);
      expect((await refresh(a.url, refreshed.body.refreshToken as string)).body.error).toBe(
        'session_revoked',
      );
    }
  });

  describe('revocation_is_recorded: a revocation commits with its audit event or not at all (item 5)', () => {
    /** Makes the next insert of an event of `type` fail as a crashed connection would. */
    async function failEvents(type: string) {
      await db.query(`
        create or replace function rotor_test_fail_event() returns trigger language plpgsql as $$
        begin
          if new.type = '${type}' then
            raise exception 'connection lost (test)' using errcode = '57P01';
          end if;
          return new;
        end $$;
        drop trigger if exists rotor_test_fail_event on events;
        create trigger rotor_test_fail_event before insert on events
          for each row execute function rotor_test_fail_event();`);
    }
    afterAll(async () => {
      await db.query('drop trigger if exists rotor_test_fail_event on events');
    });
    const events = async (sessionId: string) =>
      (
        await db.query<{ type: string }>('select type from events where session_id = $1', [
          sessionId,
        ])
      ).rows.map((row) => row.type);
    const revokedAt = async (sessionId: string) =>
      (
        await db.query<{ revoked_at: string | null }>(
          'select revoked_at from sessions where id = $1',
          [sessionId],
        )
      ).rows[0]!.revoked_at;

    it('logout: the event fails, the session stays live (503), and a retry does both', async () => {
      const tokens = await signIn(a.url, 'audit-logout@example.com');
      await failEvents('logout');
      const out = await call(a.url, 'POST', '/auth/logout', {
        body: { refreshToken: tokens.refreshToken },
      });
      expect(out.status).toBe(503);
      expect(await revokedAt(tokens.sessionId)).toBeNull();
      expect(await events(tokens.sessionId)).not.toContain('logout');
      await db.query('drop trigger rotor_test_fail_event on events');
      const again = await call(a.url, 'POST', '/auth/logout', {
        body: { refreshToken: tokens.refreshToken },
      });
      expect(again.status).toBe(204);
      expect(await revokedAt(tokens.sessionId)).not.toBeNull();
      expect(await events(tokens.sessionId)).toContain('logout');
    });

    it('revoking a device, signing out everywhere, and a password change', async () => {
      const phone = await signIn(a.url, 'audit-revoke@example.com');
      const laptop = await call(a.url, 'POST', '/auth/login', {
        body: { email: 'audit-revoke@example.com', password: PASSWORD },
        headers: { 'token-delivery': 'body' },
      });
      const laptopToken = laptop.body.accessToken as string;
      const laptopSession = laptop.body.sessionId as string;
      await failEvents('session_revoked');
      const revoked = await call(a.url, 'DELETE', `/auth/sessions/${phone.sessionId}`, {
        token: laptopToken,
      });
      expect(revoked.status).toBe(503);
      expect(await revokedAt(phone.sessionId)).toBeNull();

      await failEvents('password_changed');
      const changed = await call(a.url, 'POST', '/auth/password', {
        token: laptopToken,
        body: { currentPassword: PASSWORD, newPassword: 'another long passphrase' },
      });
      expect(changed.status).toBe(503);
      expect(await revokedAt(phone.sessionId)).toBeNull();
      const login = await call(a.url, 'POST', '/auth/login', {
        body: { email: 'audit-revoke@example.com', password: PASSWORD },
        headers: { 'token-delivery': 'body' },
      });
      expect(login.status).toBe(200); // the old password still works: nothing was changed

      await failEvents('logout_all');
      const all = await call(a.url, 'POST', '/auth/logout-all', { token: laptopToken });
      expect(all.status).toBe(503);
      expect(await revokedAt(phone.sessionId)).toBeNull();
      expect(await revokedAt(laptopSession)).toBeNull();
      expect((await call(a.url, 'GET', '/auth/me', { token: laptopToken })).status).toBe(200);
    });

    it('re-use detection: no revocation without its record', async () => {
      const tokens = await signIn(a.url, 'audit-reuse@example.com');
      const rotated = await refresh(a.url, tokens.refreshToken);
      expect(rotated.status).toBe(200);
      // Outside the grace window of the first token's rotation: move that rotation 11 s back.
      await db.query(
        `update user_tokens set rotated_at = rotated_at - 11000
          where session_id = $1 and rotated_at is not null`,
        [tokens.sessionId],
      );
      await failEvents('reuse_detected');
      const reused = await refresh(a.url, tokens.refreshToken);
      expect(reused.status).toBe(503);
      expect(await revokedAt(tokens.sessionId)).toBeNull();
      await db.query('drop trigger rotor_test_fail_event on events');
      const detected = await refresh(a.url, tokens.refreshToken);
      expect(detected.body.error).toBe('refresh_token_reused');
      expect(await revokedAt(tokens.sessionId)).not.toBeNull();
      expect(await events(tokens.sessionId)).toContain('reuse_detected');
    });
  });
});

// CI installs libfaketime (.ci/run): there a missing library fails the test rather than skip it.
describe.skipIf(!postgres.available || (!existsSync(FAKETIME) && process.env.CI !== 'true'))(
  'one clock for the grace window: an instance whose clock lags 30 s [postgres] (item 2)',
  () => {
    let a: RotorProcess;
    let lagging: RotorProcess;
    beforeAll(async () => {
      const env = {
        ...ISSUER,
        ROTOR_DATABASE_URL: await newDatabaseUrl('postgres', dir),
        ROTOR_RATE_LIMIT: 'off',
        ROTOR_REFRESH_GRACE: '2s',
      };
      a = await startRotorProcess(env);
      lagging = await startRotorProcess({
        ...env,
        LD_PRELOAD: FAKETIME,
        FAKETIME: '-30s',
        DONT_FAKE_MONOTONIC: '1',
      });
    });
    afterAll(async () => {
      await Promise.all([a?.stop(), lagging?.stop()]);
    });

    it('stolen_token_after_window_revokes: a rotated token presented after the window is re-use on the lagging instance too', async () => {
      const victim = await signIn(a.url, 'skew@example.com');
      const rotated = await refresh(a.url, victim.refreshToken);
      expect(rotated.status).toBe(200);
      await sleep(2_500);
      // By its own clock the lagging instance is 27.5 s before the rotation: inside any window.
      const stolen = await refresh(lagging.url, victim.refreshToken);
      expect(stolen.status).toBe(401);
      expect(stolen.body.error).toBe('refresh_token_reused');
      expect(stolen.body.refreshToken).toBeUndefined();
      expect((await refresh(a.url, rotated.body.refreshToken as string)).body.error).toBe(
        'session_revoked',
      );
    });

    it("every instance signs and judges access tokens on the database's time, the lagging one too (attack review)", async () => {
      // Before, the lagging instance refused a token fresh from A as "issued in the future", and
      // accepted tokens of an ended session 30 s longer.
      const fresh = await signIn(a.url, 'skew-access@example.com');
      expect(
        (await call(lagging.url, 'GET', '/auth/me', { token: fresh.accessToken })).status,
      ).toBe(200);
      const login = await call(lagging.url, 'POST', '/auth/login', {
        body: { email: 'skew-access@example.com', password: PASSWORD },
        headers: { 'token-delivery': 'body' },
      });
      const claims = JSON.parse(
        Buffer.from((login.body.accessToken as string).split('.')[1]!, 'base64url').toString(),
      ) as { iat: number };
      expect(Math.abs(claims.iat - Date.now() / 1000)).toBeLessThan(3);
      expect(
        (await call(a.url, 'GET', '/auth/me', { token: login.body.accessToken as string })).status,
      ).toBe(200);
    });

    it('honest_racer_in_window: a racer on the lagging instance inside the window still gets the successor', async () => {
      const tab = await signIn(a.url, 'skew-honest@example.com');
      const rotated = await refresh(a.url, tab.refreshToken);
      const racer = await refresh(lagging.url, tab.refreshToken);
      expect(racer.status).toBe(200);
      expect(racer.body.refreshToken).toBe(rotated.body.refreshToken);
    });
  },
);

describe('one server per SQLite file (item 7)', () => {
  let first: RotorProcess;
  let url: string;
  beforeAll(async () => {
    url = await newDatabaseUrl('sqlite', dir);
    first = await startRotorProcess({ ROTOR_DATABASE_URL: url });
  });
  afterAll(async () => {
    await first?.stop();
  });

  it('a second server on the same file is refused at start, naming the file and the variable', async () => {
    await expect(startRotorProcess({ ROTOR_DATABASE_URL: url })).rejects.toThrow(
      /ROTOR_DATABASE_URL: another Rotor server is already serving the SQLite database .*rotor-\d+\.db/,
    );
    // The first one is unharmed.
    expect((await call(first.url, 'GET', '/readyz')).status).toBe(200);
  });

  it('the CLI still works beside the running server', () => {
    const run = spawnSync(
      process.execPath,
      [ROTOR_BIN, 'users', 'create', '--email', 'cli@example.com'],
      {
        env: { ...process.env, ROTOR_DATABASE_URL: url, ROTOR_USER_PASSWORD: PASSWORD },
        encoding: 'utf8',
      },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('the same file under another name is the same file: a symlink, dangling when the first server started', async () => {
    const folder = mkdtempSync(join(dir, 'names-'));
    symlinkSync(join(folder, 'real.db'), join(folder, 'alias.db'));
    const viaLink = await startRotorProcess({ ROTOR_DATABASE_URL: `sqlite:${folder}/alias.db` });
    try {
      await expect(
        startRotorProcess({ ROTOR_DATABASE_URL: `sqlite:${folder}/real.db` }),
      ).rejects.toThrow(/another Rotor server is already serving/);
    } finally {
      await viaLink.stop();
    }
  });

  it('a database with a second hard link is refused: no path leads back from one name to the other', async () => {
    const folder = mkdtempSync(join(dir, 'links-'));
    const first = await startRotorProcess({ ROTOR_DATABASE_URL: `sqlite:${folder}/a.db` });
    await first.stop();
    linkSync(join(folder, 'a.db'), join(folder, 'b.db'));
    await expect(
      startRotorProcess({ ROTOR_DATABASE_URL: `sqlite:${folder}/b.db` }),
    ).rejects.toThrow(/ROTOR_DATABASE_URL: the SQLite database .*b\.db has 2 hard links/);
  });

  it('a server killed without cleanup leaves no lock behind', async () => {
    const other = await newDatabaseUrl('sqlite', dir);
    const crashed = await startRotorProcess({ ROTOR_DATABASE_URL: other });
    await crashed.kill();
    const next = await startRotorProcess({ ROTOR_DATABASE_URL: other });
    expect((await call(next.url, 'GET', '/readyz')).status).toBe(200);
    await next.stop();
  });
});
