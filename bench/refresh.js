// Row 3 of `npm run bench`: POST /auth/refresh throughput and latency at 1, 16 and 64 concurrent
// clients on `rotor serve` (pinned to one core), SQLite and PostgreSQL. Each client is a mobile
// session chaining its own refresh tokens, as real clients do; the load generator is this process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNodeServer, startRotor } from './lib/processes.js';
import { closedLoop, send } from './lib/load.js';
import { PASSWORD, signInUsers } from './lib/users.js';

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

/** @param {{ postgresUrl?: string, seconds?: number, clients?: number[] }} options */
export async function benchRefresh({ postgresUrl, seconds = 5, clients = [1, 16, 64] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-bench-refresh-'));
  const databases = { SQLite: `sqlite:${join(dir, 'rotor.db')}` };
  if (postgresUrl) databases.PostgreSQL = postgresUrl;
  const rows = [];
  try {
    for (const [name, databaseUrl] of Object.entries(databases)) {
      const server = await startRotor(databaseUrl);
      try {
        const sessions = await signInUsers(server.url, Math.max(...clients), `refresh-${name}`);
        await load(server.url, sessions.slice(0, 4), 1); // warm-up
        for (const count of clients) {
          rows.push({
            name: `Rotor refresh, ${name}, ${count} clients`,
            clients: count,
            ...(await load(server.url, sessions.slice(0, count), seconds)),
          });
        }
      } finally {
        await server.stop();
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
    rmSync(dir, { recursive: true, force: true });
  }
}
