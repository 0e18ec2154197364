// Row 3 of `npm run bench`: POST /auth/refresh throughput and latency at 1, 16 and 64 concurrent
// clients on `rotor serve` (pinned to one core), SQLite and PostgreSQL. Each client is a mobile
// session chaining its own refresh tokens, as real clients do; the load generator is this process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { startRotor } from './lib/processes.js';
import { percentile } from './lib/stats.js';
import { signInUsers } from './lib/users.js';

/** One POST over a keep-alive agent; resolves with the status and the parsed JSON body. */
function post(agent, url, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function load(url, sessions, seconds) {
  const agent = new Agent({ keepAlive: true, maxSockets: sessions.length });
  const latencies = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  try {
    await Promise.all(
      sessions.map(async (session) => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          const { status, json } = await post(agent, `${url}/auth/refresh`, {
            refreshToken: session.refreshToken,
          });
          if (status !== 200) throw new Error(`refresh: ${status} ${JSON.stringify(json)}`);
          session.refreshToken = json.refreshToken;
          latencies.push(performance.now() - t0);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return {
    perSecond: (latencies.length * 1000) / (performance.now() - started),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
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
            ...(await load(server.url, sessions.slice(0, count), seconds)),
          });
        }
      } finally {
        await server.stop();
      }
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
