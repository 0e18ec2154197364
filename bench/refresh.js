// Row 3 of `npm run bench`: POST /auth/refresh throughput and latency at 1, 16 and 64 concurrent
// clients on `rotor serve` (pinned to one core), SQLite and PostgreSQL, at Rotor's defaults and,
// beside each, with request logs at `warn` and the rate limits off. Each client is a mobile app
// chaining its session's refresh tokens from its own address; a session refreshes at most
// SESSION_USES times (the default limit is 30 a minute per session), then the client goes on with
// a fresh session of another user from another address, so the limits are exercised, not tripped.
// The load generator is this process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNodeServer, startRotor, WARN_LIMITS_OFF } from './lib/processes.js';
import { closedLoop, send } from './lib/load.js';
import { addressAgents, PASSWORD, signInSessions } from './lib/users.js';

/** Refreshes per session in the bench: under the default 30 a minute (`LIMITS.refreshSession`). */
const SESSION_USES = 28;

/**
 * `clients` concurrent clients refreshing for `seconds`, each taking fresh sessions from `pool`
 * (spent ones are removed) and refreshing each from its own address; per second, p50, p99.
 */
export function loadPool(url, pool, clients, seconds, agents) {
  const states = Array.from({ length: clients }, () => ({ session: undefined, uses: 0 }));
  return closedLoop(states, seconds, async (state) => {
    if (state.session === undefined || state.uses >= SESSION_USES) {
      state.session = pool.shift();
      state.uses = 0;
      if (state.session === undefined) throw new Error('refresh bench: the session pool ran dry');
    }
    const session = state.session;
    state.uses += 1;
    const { status, json } = await send(agents.of(session.address), `${url}/auth/refresh`, {
      method: 'POST',
      body: { refreshToken: session.refreshToken },
    });
    if (status !== 200) throw new Error(`refresh: ${status} ${JSON.stringify(json)}`);
    session.refreshToken = json.refreshToken;
  });
}

/** `sessions` refresh in a loop for `seconds`, each chaining its own tokens; per second, p50, p99. */
export function load(url, sessions, seconds) {
  return closedLoop(sessions, seconds, async (session, agent) => {
    const { status, json } = await send(agent, `${url}/auth/refresh`, {
      method: 'POST',
      body: { refreshToken: session.refreshToken },
    });
    if (status !== 200) throw new Error(`refresh: ${status} ${JSON.stringify(json)}`);
    session.refreshToken = json.refreshToken;
  });
}

const BETTER_AUTH = fileURLToPath(new URL('./servers/better-auth.js', import.meta.url));

/** `count` better-auth accounts signed up over HTTP; the session cookie of each. */
async function signUpBetterAuth(url, count) {
  const cookies = [];
  for (let i = 0; i < count; i += 1) {
    const response = await fetch(`${url}/api/auth/sign-up/email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: url },
      body: JSON.stringify({ email: `peer-${i}@example.test`, password: PASSWORD, name: 'Peer' }),
    });
    if (!response.ok) throw new Error(`better-auth sign-up: ${response.status}`);
    cookies.push(
      response.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; '),
    );
  }
  return cookies;
}

/** better-auth's session check (what its clients call to stay signed in) in a closed loop. */
function getSessions(url, cookies, seconds) {
  return closedLoop(cookies, seconds, async (cookie, agent) => {
    const { status, json } = await send(agent, `${url}/api/auth/get-session`, {
      headers: { cookie },
    });
    if (status !== 200 || !json?.session) throw new Error(`get-session: ${status}`);
  });
}

/** Refreshes per second a line is prepared for before one was measured. */
const FIRST_GUESS_PER_SECOND = 1500;

/** @param {{ postgresUrl?: string, seconds?: number, clients?: number[] }} options */
export async function benchRefresh({ postgresUrl, seconds = 5, clients = [1, 16, 64] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-bench-refresh-'));
  const databases = { SQLite: `sqlite:${join(dir, 'rotor.db')}` };
  if (postgresUrl) databases.PostgreSQL = postgresUrl;
  const settings = [
    ['', {}],
    [', logs at warn, limits off', WARN_LIMITS_OFF],
  ];
  const rows = [];
  const agents = addressAgents();
  try {
    for (const [name, databaseUrl] of Object.entries(databases)) {
      for (const [suffix, env] of settings) {
        // One process per setting, as a server runs for long: the sessions are signed in on it.
        const server = await startRotor(databaseUrl, env);
        const pool = [];
        let users = 0;
        let lastRate = FIRST_GUESS_PER_SECOND;
        /** Signs more sessions in until the pool holds enough for `refreshes`, with a margin. */
        const topUp = async (refreshes) => {
          const need = Math.ceil((refreshes * 1.5) / SESSION_USES) - pool.length;
          if (need <= 0) return;
          const prefix = `refresh-${name}-${suffix === '' ? 'defaults' : 'warn'}`;
          pool.push(
            ...(await signInSessions(server.url, need, prefix, { agents, firstUser: users })),
          );
          users += Math.ceil(need / 8);
        };
        try {
          await topUp(4 * lastRate);
          await loadPool(server.url, pool, 4, 1, agents); // warm-up
          for (const count of clients) {
            await topUp(seconds * Math.max(lastRate, FIRST_GUESS_PER_SECOND));
            const left = pool.length;
            const result = await loadPool(server.url, pool, count, seconds, agents);
            lastRate = result.perSecond;
            rows.push({
              name: `Rotor refresh, ${name}, ${count} clients${suffix}`,
              clients: count,
              defaults: suffix === '',
              sessionsUsed: left - pool.length,
              ...result,
            });
          }
        } finally {
          await server.stop();
        }
      }
    }
    const peer = await startNodeServer(
      BETTER_AUTH,
      [],
      { BETTER_AUTH_DB: join(dir, 'better-auth.db') },
      '/api/auth/ok',
    );
    try {
      const cookies = await signUpBetterAuth(peer.url, Math.max(...clients));
      await getSessions(peer.url, cookies.slice(0, 4), 1); // warm-up
      for (const count of clients) {
        rows.push({
          name: `peer: better-auth get-session, SQLite, ${count} clients`,
          clients: count,
          peer: true,
          ...(await getSessions(peer.url, cookies.slice(0, count), seconds)),
        });
      }
    } finally {
      await peer.stop();
    }
    return rows;
  } finally {
    agents.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
