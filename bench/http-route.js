// Row 2 of `npm run bench`: GET /auth/me on `rotor serve` against a bare Fastify route returning
// the same JSON (the limit), under wrk on loopback with 64 different valid tokens. The server gets
// CPU 0, wrk CPU 1. Rounds interleave the candidates, each in a fresh process; each reports
// requests/s and latency.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinned, startNodeServer, startRotor, WARN_LIMITS_OFF } from './lib/processes.js';
import { median, spreadOf } from './lib/stats.js';
import { signInUsers } from './lib/users.js';

const BARE = fileURLToPath(new URL('./servers/bare-route.js', import.meta.url));

export const HAS_WRK = spawnSync('wrk', ['-v']).error === undefined;

/** Runs wrk against `url` with the Lua script; requests/s and latency percentiles in ms. */
export function wrk(url, script, seconds, connections, path = '/auth/me') {
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
export function writeScript(dir, tokens) {
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
  rounds = 5,
  seconds = 4,
  connections = 32,
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-bench-http-'));
  let running;
  try {
    // Sign the users in once; each round then starts fresh processes on the same databases, whose
    // signing keys and sessions persist.
    const databases = { 'Rotor GET /auth/me, SQLite': `sqlite:${join(dir, 'rotor.db')}` };
    if (postgresUrl) databases['Rotor GET /auth/me, PostgreSQL'] = postgresUrl;
    const scripts = {};
    let body;
    for (const [name, url] of Object.entries(databases)) {
      running = await startRotor(url);
      const sessions = await signInUsers(running.url, 64, `http-${Object.keys(scripts).length}`);
      scripts[name] = writeScript(
        mkdtempSync(join(dir, 'lua-')),
        sessions.map((s) => s.accessToken),
      );
      const me = await fetch(`${running.url}/auth/me`, {
        headers: { authorization: `Bearer ${sessions[0].accessToken}` },
      });
      if (!me.ok) throw new Error(`GET /auth/me: ${me.status}`);
      body ??= await me.text();
      await running.stop();
      running = undefined;
    }
    const sqlite = 'Rotor GET /auth/me, SQLite';
    const BASELINE = 'Rotor GET /healthz, no token (server baseline)';
    const LIMIT = 'bare Fastify route (limit)';
    // Each process measures its routes after a warm-up (JIT, caches). A fresh process per round,
    // because one process's speed is not another's: on Node 20 a Rotor process settles, at random,
    // into a fast or a slow state (see docs/benchmarks.md, row 2), so the rounds sample both.
    const WARN = ', logs at warn, limits off';
    const processes = [
      { start: () => startNodeServer(BARE, [], { BARE_BODY: body }), routes: [[LIMIT, sqlite]] },
      // Rotor at its defaults, then beside it at `warn` with limits off (the cost of the logs).
      ...Object.entries(databases).flatMap(([name, url]) =>
        [
          ['', {}],
          [WARN, WARN_LIMITS_OFF],
        ].map(([suffix, env]) => ({
          start: () => startRotor(url, env),
          // What the server costs before any token is looked at: the per-request features API.md
          // asks of every route (security headers, request id, CORS, cookies, logging, metrics).
          routes:
            name === sqlite
              ? [
                  [BASELINE + suffix, sqlite, '/healthz'],
                  [name + suffix, name],
                ]
              : [[name + suffix, name]],
        })),
      ),
    ];
    const results = {};
    for (const { routes } of processes) for (const [name] of routes) results[name] = [];
    for (let round = 0; round < rounds; round += 1) {
      for (const { start, routes } of processes) {
        running = await start();
        for (const [, scriptOf, path] of routes) {
          wrk(running.url, scripts[scriptOf], 2, connections, path);
        }
        for (const [name, scriptOf, path] of routes) {
          results[name].push(wrk(running.url, scripts[scriptOf], seconds, connections, path));
        }
        await running.stop();
        running = undefined;
      }
    }
    const limit = median(results[LIMIT].map((r) => r.rps));
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
    await running?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
