// What Rotor's per-request features cost a trivial route (`node bench/features.js`; not part of
// `npm run bench`): `GET /healthz` on Fastify with one feature at a time, as Rotor sets it up, then
// all of them, and `rotor serve` itself. Each candidate runs in a fresh process per round, pinned
// to CPU 0, wrk on CPU 1; the table gives the median requests/s and its ratio to the bare route.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HAS_WRK } from './http-route.js';
import { pinned, startNodeServer, startRotor } from './lib/processes.js';
import { formatSpread, median, printTable, spreadOf } from './lib/stats.js';

const SERVER = fileURLToPath(new URL('./servers/feature-route.js', import.meta.url));
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ALL = 'logger,request-id,cookie,headers,metrics';
const CANDIDATES = [
  ['bare route', ''],
  ['+ pino logger at warn', 'logger'],
  ['+ request id (randomUUID)', 'request-id'],
  ['+ @fastify/cookie', 'cookie'],
  ['+ @fastify/cors (Rotor used it until this run)', 'cors-plugin'],
  ['+ security headers, request id header, Vary', 'headers'],
  ['+ Prometheus histogram (onResponse)', 'metrics'],
  ["all of Rotor's, with its own CORS", ALL],
  ["all of Rotor's, with @fastify/cors", `${ALL},cors-plugin`],
];

function wrk(url, seconds) {
  const [command, args] = pinned(1, 'wrk', ['-t1', '-c32', `-d${seconds}s`, `${url}/healthz`]);
  const { stdout } = spawnSync(command, args, { encoding: 'utf8' });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!rps) throw new Error(`wrk failed:\n${stdout}`);
  return Number(rps[1]);
}

async function measure(start) {
  const server = await start();
  try {
    wrk(server.url, 1);
    return wrk(server.url, 3);
  } finally {
    await server.stop();
  }
}

if (!HAS_WRK) {
  console.log('wrk is not installed (Debian package wrk): skipped');
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'rotor-bench-features-'));
const starts = [
  ...CANDIDATES.map(([name, features]) => [
    name,
    () => startNodeServer(SERVER, [], { FEATURES: features }),
  ]),
  ['rotor serve, SQLite', () => startRotor(`sqlite:${join(dir, 'rotor.db')}`)],
];
const results = Object.fromEntries(starts.map(([name]) => [name, []]));
try {
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const [name, start] of starts) results[name].push(await measure(start));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const limit = median(results['bare route']);
printTable(
  `Per-request features on GET /healthz, ${ROUNDS} fresh processes each; ratio to the bare route`,
  ['candidate', 'req/s', '× bare', 'spread', 'rounds'],
  Object.entries(results).map(([name, values]) => [
    name,
    Math.round(median(values)),
    (median(values) / limit).toFixed(2),
    formatSpread(spreadOf(values, limit)),
    values.map((v) => Math.round(v / 1000)).join(' ') + ' k',
  ]),
);
