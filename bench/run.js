// `npm run bench`: every row measures Rotor and its reference in the same run, interleaved, and
// prints one table. Never part of `npm test`: timings belong here, not in assertions.
import { cpus } from 'node:os';
import { benchVerify } from './verify.js';

const rows = await benchVerify();
const width = Math.max(...rows.map((r) => r.name.length));
console.log(
  `\nRotor benchmarks: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'})`,
);
console.log(
  '\n1. Access-token verification in process (EdDSA), one core; ratio to raw node:crypto\n',
);
console.log(`${'candidate'.padEnd(width)}  ${'ops/s'.padStart(9)}  ${'× raw'.padStart(6)}  spread`);
for (const row of rows) {
  const spread = `${row.spread[0].toFixed(2)}–${row.spread[1].toFixed(2)}`;
  console.log(
    `${row.name.padEnd(width)}  ${Math.round(row.opsPerSecond).toString().padStart(9)}  ${row.ratio.toFixed(2).padStart(6)}  ${spread}`,
  );
}
console.log(
  '\nRows 2 (protected HTTP route under wrk) and 3 (refresh throughput, SQLite and PostgreSQL,',
);
console.log('with better-auth as the peer) are not built yet: see the open benchmark issue.');
