// `npm run bench`: every row measures Rotor and its reference in the same run, interleaved, and
// prints one table per row. Never part of `npm test`: timings belong here, not in assertions.
import { cpus } from 'node:os';
import { findPostgresBin, startPostgres } from '@rotor/testkit';
import { benchDpop } from './dpop.js';
import { benchEmbedded } from './embedded.js';
import { benchHttpRoute, HAS_WRK } from './http-route.js';
import { HAS_TASKSET } from './lib/processes.js';
import { formatSpread, printTable } from './lib/stats.js';
import { benchLogin, OWASP_ARGON2ID } from './login.js';
import { benchRefresh } from './refresh.js';
import { benchScale } from './scale.js';
import { benchVerify } from './verify.js';

// BENCH_ROWS=2,6 runs only those rows (default: every row).
const only = process.env.BENCH_ROWS?.split(',').map((row) => row.trim());
const wanted = (row) => only === undefined || only.includes(String(row));

console.log(
  `Rotor benchmarks: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${new Date().toISOString()}`,
);

if (wanted(1)) {
  const verify = await benchVerify();
  printTable(
    '1. Access-token verification in process (EdDSA), one core; ratio to raw node:crypto',
    ['candidate', 'ops/s', '× raw', 'spread'],
    verify.map((r) => [
      r.name,
      Math.round(r.opsPerSecond),
      r.ratio.toFixed(2),
      formatSpread(r.spread),
    ]),
  );
}

if (!HAS_WRK && [2, 6].some(wanted)) {
  console.log('\n2. and 6. HTTP routes: SKIPPED, wrk is not installed (apt-get install wrk).');
}
if ([2, 3, 5, 6, 7].some(wanted)) {
  const bin = findPostgresBin();
  // PostgreSQL's own durability defaults, except synchronous_commit=off: the same promise as
  // SQLite's synchronous=NORMAL in WAL (a crash of the machine may lose the last commits).
  const postgres = bin
    ? await startPostgres(bin, { durability: 'on', settings: ['synchronous_commit=off'] })
    : undefined;
  try {
    if (HAS_WRK && wanted(2)) {
      const route = await benchHttpRoute({ postgresUrl: postgres?.url });
      printTable(
        `2. Protected HTTP route, wrk -t1 -c32, 64 tokens, server ${HAS_TASKSET ? 'pinned to one core' : 'unpinned'}, Rotor at its defaults (request logs at info, limits on) and at warn with limits off; ratio to the bare route`,
        ['candidate', 'req/s', '× bare', 'spread', 'p50 ms', 'p99 ms'],
        route.map((r) => [
          r.name,
          Math.round(r.rps),
          r.ratio.toFixed(2),
          formatSpread(r.spread),
          r.p50.toFixed(2),
          r.p99.toFixed(2),
        ]),
      );
    }
    if (wanted(3)) {
      const refresh = await benchRefresh({ postgresUrl: postgres?.url });
      const peerAt = (clients) => refresh.find((r) => r.peer && r.clients === clients)?.perSecond;
      // Each default line's partner: the same store and concurrency at warn with limits off.
      const warnOf = (row) =>
        refresh.find((r) => r.name === `${row.name}, logs at warn, limits off`)?.perSecond;
      printTable(
        "3. Refresh (rotation in one transaction, new access token signed), server on one core, load from this process, each client a session of its own user and address (fresh sessions as each nears the 30-a-minute limit); ratio to the peer's session check at the same concurrency, and the defaults' ratio to the same line at warn with limits off",
        ['candidate', 'per s', '× peer', '× warn', 'p50 ms', 'p99 ms', 'sessions'],
        refresh.map((r) => [
          r.name,
          Math.round(r.perSecond),
          (r.perSecond / peerAt(r.clients)).toFixed(2),
          r.defaults && warnOf(r) ? (r.perSecond / warnOf(r)).toFixed(2) : '',
          r.p50.toFixed(2),
          r.p99.toFixed(2),
          r.sessionsUsed ?? '',
        ]),
      );
    }
    if (wanted(5)) {
      const scale = await benchScale({ postgresUrl: postgres?.url });
      printTable(
        '5. Scale: refresh with a thousand vs a million stored sessions (250k users, one live token each), one client, rate limits off (it chains one session); p50 ratio to the small store',
        ['candidate', 'p50 ms', '× small', 'per s', 'MiB per 1M sessions', 'fill s'],
        scale.map((r) => [
          r.name,
          r.p50.toFixed(2),
          r.ratio.toFixed(2),
          Math.round(r.perSecond),
          r.mibPerMillion?.toFixed(0) ?? '',
          r.seedSeconds.toFixed(0),
        ]),
      );
    }
    if (HAS_WRK && wanted(6)) {
      const embedded = await benchEmbedded({ postgresUrl: postgres?.url });
      printTable(
        `6. An app's own route behind app.requireSession (Rotor embedded by rotorPlugin), wrk -t1 -c32, 64 tokens, server ${HAS_TASKSET ? 'pinned to one core' : 'unpinned'}; ratio to the same route without the check, in the same process`,
        ['candidate', 'req/s', '× no check', 'spread', 'p50 ms', 'p99 ms', 'revoked in ms'],
        embedded.map((r) => [
          r.name,
          Math.round(r.rps),
          r.ratio.toFixed(2),
          formatSpread(r.spread),
          r.p50.toFixed(2),
          r.p99.toFixed(2),
          r.revocationDelay?.toFixed(1) ?? '',
        ]),
      );
    }
    if (wanted(7)) {
      // BENCH_DPOP_SECONDS and BENCH_DPOP_ROUNDS shorten the row while developing.
      const { rows: dpop, proofMs } = await benchDpop({
        postgresUrl: postgres?.url,
        ...(process.env.BENCH_DPOP_SECONDS && { seconds: Number(process.env.BENCH_DPOP_SECONDS) }),
        ...(process.env.BENCH_DPOP_ROUNDS && { rounds: Number(process.env.BENCH_DPOP_ROUNDS) }),
      });
      printTable(
        `7. DPoP proof check (issue 18): GET /auth/me and refresh with a fresh ES256 proof per request vs Bearer, server on one core, rate limits off (each client chains one session), load from this process; ratio to Bearer at the same route, store and concurrency. "load CPU": the load process's CPU use, in cores`,
        ['candidate', 'per s', '× Bearer', 'p50 ms', 'p99 ms', 'load CPU'],
        dpop.map((r) => [
          r.name,
          Math.round(r.perSecond),
          r.ratio.toFixed(2),
          r.p50.toFixed(2),
          r.p99.toFixed(2),
          r.loadCpu.toFixed(2),
        ]),
      );
      console.log(
        `Client side: one proof (ES256, jose, fresh jti, ath) costs ${proofMs.toFixed(3)} ms of the load process's CPU (${Math.round(1000 / proofMs)} proofs/s on one core), not counted in the latencies above.`,
      );
    }
  } finally {
    postgres?.destroy();
  }
}
if (wanted(4)) {
  const login = await benchLogin();
  printTable(
    `4. Login (argon2id, OWASP parameters m=${OWASP_ARGON2ID.memoryCost} KiB t=${OWASP_ARGON2ID.timeCost} p=${OWASP_ARGON2ID.parallelism}), SQLite, 4 concurrent clients; ratio to argon2id verification alone`,
    ['candidate', 'per s', '× limit', 'p50 ms', 'p99 ms', 'peak MiB'],
    [
      [
        'argon2id verify alone, one thread (limit)',
        login.rawPerSecond.toFixed(1),
        '1.00',
        '',
        '',
        '',
      ],
      [
        'Rotor POST /auth/login',
        login.perSecond.toFixed(1),
        login.ratio.toFixed(2),
        login.p50.toFixed(1),
        login.p99.toFixed(1),
        login.peakMiB?.toFixed(0) ?? '?',
      ],
    ],
  );
}
