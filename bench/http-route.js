// Row 2 of `npm run bench`: GET /auth/me on `rotor serve` against a bare Fastify route returning
// the same JSON (the limit), under wrk on loopback with 64 different valid tokens. The server gets
// CPU 0, wrk CPU 1. Rounds interleave the candidates; each reports requests/s and latency.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinned, startNodeServer, startRotor } from './lib/processes.js';
import { median, spreadOf } from './lib/stats.js';
import { signInUsers } from './lib/users.js';

const BARE = fileURLToPath(new URL('./servers/bare-route.js', import.meta.url));

export const HAS_WRK = spawnSync('wrk', ['-v']).error === undefined;

/** Runs wrk against `url` with the Lua script; requests/s and latency percentiles in ms. */
function wrk(url, script, seconds, connections, path = '/auth/me') {
  const [command, args] = pinned(1, 'wrk', [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--latency',
    '-s',
    script,
    `${url}${path}`,
  ]);
  const { stdout, stderr } = spawnSync(command, args, { encoding: 'utf8' });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!rps) throw new Error(`wrk failed:\n${stdout}\n${stderr}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout);
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} error responses from ${url}`);
  const latency = (p) => {
    const match = new RegExp(`${p}%\\s+([\\d.]+)(us|ms|s)`).exec(stdout);
    if (!match) return NaN;
    const factor = { us: 0.001, ms: 1, s: 1000 }[match[2]];
    return Number(match[1]) * factor;
  };
  return { rps: Number(rps[1]), p50: latency(50), p99: latency(99) };
}

/** The Lua script that sends each request with the next of `tokens`. */
function writeScript(dir, tokens) {
  const path = join(dir, 'tokens.lua');
  writeFileSync(
    path,
    `local tokens = {${tokens.map((t) => JSON.stringify(t)).join(',\n')}}
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
`,
  );
  return path;
}

/**
 * @param {{ postgresUrl?: string, rounds?: number, seconds?: number, connections?: number }} options
 */
export async function benchHttpRoute({
  postgresUrl,
  rounds = 3,
  seconds = 5,
  connections = 32,
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-bench-http-'));
  const servers = [];
  try {
    const rotorSqlite = await startRotor(`sqlite:${join(dir, 'rotor.db')}`);
    servers.push(rotorSqlite);
    const candidates = { 'Rotor GET /auth/me, SQLite': rotorSqlite };
    if (postgresUrl) {
      const rotorPg = await startRotor(postgresUrl);
      servers.push(rotorPg);
      candidates['Rotor GET /auth/me, PostgreSQL'] = rotorPg;
    }
    const tokensByCandidate = {};
    let body;
    for (const [name, server] of Object.entries(candidates)) {
      const sessions = await signInUsers(server.url, 64, `http-${servers.indexOf(server)}`);
      tokensByCandidate[name] = writeScript(
        mkdtempSync(join(dir, 'lua-')),
        sessions.map((s) => s.accessToken),
      );
      const me = await fetch(`${server.url}/auth/me`, {
        headers: { authorization: `Bearer ${sessions[0].accessToken}` },
      });
      if (!me.ok) throw new Error(`GET /auth/me: ${me.status}`);
      body ??= await me.text();
    }
    const bare = await startNodeServer(BARE, [], { BARE_BODY: body });
    servers.push(bare);
    const all = {
      'bare Fastify route (limit)': [bare, tokensByCandidate['Rotor GET /auth/me, SQLite']],
    };
    // What the server costs before any token is looked at: the per-request features API.md asks
    // of every route (security headers, request id, CORS, cookies, logging), on a trivial route.
    all['Rotor GET /healthz, no token (server baseline)'] = [
      rotorSqlite,
      tokensByCandidate['Rotor GET /auth/me, SQLite'],
      '/healthz',
    ];
    for (const [name, server] of Object.entries(candidates))
      all[name] = [server, tokensByCandidate[name]];

    // Warm up (JIT, caches), then interleaved rounds.
    for (const [server, script, path] of Object.values(all)) {
      wrk(server.url, script, 2, connections, path);
    }
    const results = Object.fromEntries(Object.keys(all).map((name) => [name, []]));
    for (let round = 0; round < rounds; round += 1) {
      for (const [name, [server, script, path]] of Object.entries(all)) {
        results[name].push(wrk(server.url, script, seconds, connections, path));
      }
    }
    const limit = median(results['bare Fastify route (limit)'].map((r) => r.rps));
    return Object.entries(results).map(([name, runs]) => {
      const rps = runs.map((r) => r.rps);
      return {
        name,
        rps: median(rps),
        ratio: median(rps) / limit,
        spread: spreadOf(rps, limit),
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
      };
    });
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
