// Row 6 of `npm run bench`: the session check of an application that embeds Rotor
// (servers/embedded-app.js), on every request of one of its routes, against the same route
// without it, in the same process. wrk on loopback with 64 different tokens of 64 sessions; the
// server gets CPU 0, wrk CPU 1. Each round starts a fresh process per database and measures both
// routes in it (their order alternating), so each round gives a ratio free of the process's state.
// After the last round, still in a warm process, one of the 64 sessions is revoked by another
// process (`rotor sessions revoke`) and its token must be refused at once: outside the timing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wrk, writeScript } from './http-route.js';
import { ROTOR_BIN, rotorEnv, startNodeServer } from './lib/processes.js';
import { median, spreadOf } from './lib/stats.js';
import { signInUsers } from './lib/users.js';

const APP = fileURLToPath(new URL('./servers/embedded-app.js', import.meta.url));
const PREFIX = '/rotor';
const OPEN = '/app/open';
const CHECKED = '/app/notes';

function startApp(databaseUrl) {
  return startNodeServer(APP, [], rotorEnv(databaseUrl), OPEN);
}

/** GET `path` with `token`: the status and, for a refusal, the error code. */
async function get(url, path, token) {
  const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const json = await response.json();
  return { status: response.status, error: json.error };
}

/**
 * Revokes `email`'s sessions from another process and checks, in the running app whose cache holds
 * them, that its token is refused and every other token still passes. Returns the milliseconds
 * between the revoking process's exit and the first refusal (0 when the very next request was).
 */
async function verifyRevocation(app, databaseUrl, sessions) {
  const [victim, ...others] = sessions;
  if ((await get(app.url, CHECKED, victim.accessToken)).status !== 200) {
    throw new Error('revocation check: the session to revoke is not live');
  }
  const revoke = spawnSync(
    process.execPath,
    [ROTOR_BIN, 'sessions', 'revoke', '--email', victim.email, '--all'],
    { env: { ...process.env, ...rotorEnv(databaseUrl) }, encoding: 'utf8' },
  );
  if (revoke.status !== 0) throw new Error(`rotor sessions revoke: ${revoke.stderr}`);
  const revokedAt = performance.now();
  // SQLite: the next request reads `data_version` and must refuse. PostgreSQL: a revocation by
  // another process arrives as a NOTIFY, the one window of its design (docs/benchmarks.md, row 2).
  for (;;) {
    const answer = await get(app.url, CHECKED, victim.accessToken);
    if (answer.status === 401 && answer.error === 'session_revoked') break;
    if (answer.status !== 200) throw new Error(`revocation check: ${JSON.stringify(answer)}`);
    if (performance.now() - revokedAt > 3000) throw new Error('revoked session still accepted');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const delay = performance.now() - revokedAt;
  for (const session of others) {
    const answer = await get(app.url, CHECKED, session.accessToken);
    if (answer.status !== 200)
      throw new Error(`revocation check: a live session got ${JSON.stringify(answer)}`);
  }
  return delay;
}

/**
 * @param {{ postgresUrl?: string, rounds?: number, seconds?: number, connections?: number }} options
 */
export async function benchEmbedded({
  postgresUrl,
  rounds = 5,
  seconds = 4,
  connections = 32,
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-bench-embedded-'));
  const databases = { SQLite: `sqlite:${join(dir, 'rotor.db')}` };
  if (postgresUrl) databases.PostgreSQL = postgresUrl;
  let running;
  try {
    const rows = [];
    for (const [dialect, databaseUrl] of Object.entries(databases)) {
      running = await startApp(databaseUrl);
      const sessions = await signInUsers(`${running.url}${PREFIX}`, 64, `embedded-${dialect}`);
      const script = writeScript(
        mkdtempSync(join(dir, 'lua-')),
        sessions.map((s) => s.accessToken),
      );
      await running.stop();
      running = undefined;
      const open = [];
      const checked = [];
      const ratios = [];
      let revocationDelay;
      for (let round = 0; round < rounds; round += 1) {
        running = await startApp(databaseUrl);
        const paths = round % 2 === 0 ? [OPEN, CHECKED] : [CHECKED, OPEN];
        for (const path of paths) wrk(running.url, script, 2, connections, path);
        const measured = {};
        for (const path of paths) {
          measured[path] = wrk(running.url, script, seconds, connections, path);
        }
        open.push(measured[OPEN]);
        checked.push(measured[CHECKED]);
        ratios.push(measured[CHECKED].rps / measured[OPEN].rps);
        if (round === rounds - 1) {
          revocationDelay = await verifyRevocation(running, databaseUrl, sessions);
        }
        await running.stop();
        running = undefined;
      }
      const limit = median(open.map((r) => r.rps));
      const row = (name, runs, ratio, spread) => ({
        name,
        rps: median(runs.map((r) => r.rps)),
        ratio,
        spread,
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
      });
      rows.push(
        row(
          `app route, no check, ${dialect} process`,
          open,
          1,
          spreadOf(
            open.map((r) => r.rps),
            limit,
          ),
        ),
        {
          ...row(
            `app route + app.requireSession, ${dialect}`,
            checked,
            median(ratios),
            spreadOf(ratios, 1),
          ),
          revocationDelay,
        },
      );
    }
    return rows;
  } finally {
    await running?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
