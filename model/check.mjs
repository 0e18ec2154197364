#!/usr/bin/env node
// Checks model/rotor.pml exhaustively with Spin (docs/protocol.md): every configuration with all
// fixes on must verify without error, and with each fix turned off the model must find the
// violation that fix is for. Exits non-zero otherwise.
//
//   node model/check.mjs                 the small configurations (CI)
//   ROTOR_MODEL=large node model/check.mjs   the larger ones as well
//   node model/check.mjs --trace         print the trail of each violation found
//   node model/check.mjs --only=attack   the runs whose name contains "attack"
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MODEL = join(dirname(fileURLToPath(import.meta.url)), 'rotor.pml');
const large = process.env.ROTOR_MODEL === 'large';
const trace = process.argv.includes('--trace');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
/** pan's memory limit in MiB; a run that needs more fails instead of swapping. */
const MEMLIM = Number(process.env.ROTOR_MODEL_MEMLIM ?? (large ? 12_000 : 3_000));

const HONEST = 1;
const ATTACK = 2;
const REVOKE = 3;
const CACHE = 4;
const DPOP = 5;

/** The configurations: each verified with every fix on. */
const CONFIGS = {
  'honest-shared-jar': { SCENARIO: HONEST, NTABS: 2, SHARED: 2, NREQ: 2 },
  'honest-private-copies': { SCENARIO: HONEST, NTABS: 2, SHARED: 1, NREQ: 2 },
  'honest-sqlite': { SCENARIO: HONEST, SQLITE: 1, NTABS: 2, SHARED: 1, NREQ: 2 },
  attack: { SCENARIO: ATTACK, NTABS: 1, SHARED: 1, NREQ: 2 },
  revoke: { SCENARIO: REVOKE, NTABS: 1, SHARED: 1, NREQ: 2 },
  cache: { SCENARIO: CACHE, NTABS: 1, SHARED: 1, NREQ: 3 },
  'cache-two-readers': { SCENARIO: CACHE, NTABS: 2, SHARED: 2, NREQ: 1, CRASHES: 0 },
  dpop: { SCENARIO: DPOP, NTABS: 1, SHARED: 1, NREQ: 2, CRASHES: 2 },
  'dpop-no-window': { SCENARIO: DPOP, NTABS: 1, SHARED: 1, NREQ: 2, CRASHES: 2, GRACE: 0 },
};
const LARGE = {
  'large-honest-three-tabs': { SCENARIO: HONEST, NTABS: 3, SHARED: 2, NREQ: 2 },
  'large-honest-two-crashes': { SCENARIO: HONEST, NTABS: 2, SHARED: 1, NREQ: 2, CRASHES: 2 },
  'large-attack-twice': { SCENARIO: ATTACK, NTABS: 1, SHARED: 1, NREQ: 3, NATTACK: 2 },
  'large-revoke-two-tabs': { SCENARIO: REVOKE, NTABS: 2, SHARED: 2, NREQ: 2 },
  'large-cache-two-readers': { SCENARIO: CACHE, NTABS: 2, SHARED: 2, NREQ: 2, CRASHES: 0 },
  'large-cache-long': { SCENARIO: CACHE, NTABS: 1, SHARED: 1, NREQ: 3, MAXTIME: 5 },
};

/** Each fix off must make the model fail, with one of these properties. */
const FAILS = [
  {
    flag: 'FIX_CHAIN_TIP',
    config: 'honest-private-copies',
    expect: ['honest_not_logged_out'],
  },
  { flag: 'FIX_ONE_CLOCK', config: 'honest-private-copies', expect: ['honest_not_logged_out'] },
  {
    flag: 'FIX_ONE_CLOCK',
    config: 'attack',
    expect: ['attacker_after_window_gets_nothing', 'inv2_single_use_outside_window'],
  },
  { flag: 'FIX_HEARTBEAT', config: 'cache', expect: ['access_refused_within_bound'] },
  { flag: 'FIX_LOCK_SESSION', config: 'revoke', expect: ['no_refresh_after_revocation'] },
  { flag: 'FIX_AUDIT_IN_TX', config: 'revoke', expect: ['revocation_recorded'] },
  {
    flag: 'FIX_REVOKE_ANY_TOKEN',
    config: 'revoke',
    expect: ['revoke_by_any_token_ends_session'],
  },
  {
    flag: 'FIX_CACHE_RECHECK',
    config: 'cache-two-readers',
    expect: ['access_refused_within_bound'],
  },
  // Issue 19: the one-statement refresh without its lock on the session's row commits a rotation
  // over a revocation it read before.
  { flag: 'FIX_STATEMENT_LOCK', config: 'revoke', expect: ['no_refresh_after_revocation'] },
  { flag: 'FIX_SQLITE_ONE_PROCESS', config: 'honest-sqlite', expect: ['honest_not_failed'] },
  // DPoP (issue 18): without the retry rule a late retry after a lost answer is re-use; with the
  // key checked late, a keyless thief gets the tip in the window, and revokes after it.
  { flag: 'FIX_DPOP_RETRY', config: 'dpop', expect: ['honest_not_logged_out'] },
  { flag: 'FIX_DPOP_KEY_FIRST', config: 'dpop', expect: ['thief_without_key_gets_nothing'] },
  { flag: 'FIX_DPOP_KEY_FIRST', config: 'dpop-no-window', expect: ['thief_cannot_revoke'] },
  // Not a fix: the cookie-jar assumption. Responses applied in any order log an honest tab out.
  { flag: 'JAR_FIFO', config: 'honest-shared-jar', expect: ['honest_not_logged_out'] },
];

function defines(config) {
  return Object.entries(config).map(([name, value]) => `-D${name}=${value}`);
}

/** spin -a, gcc, pan: the verification's numbers, and the violated property if any. */
function verify(name, config) {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-model-'));
  try {
    copyFileSync(MODEL, join(dir, 'rotor.pml'));
    const flags = defines(config);
    execFileSync('spin', ['-a', ...flags, 'rotor.pml'], { cwd: dir, stdio: 'pipe' });
    execFileSync(
      'gcc',
      ['-O2', '-DSAFETY', '-DCOLLAPSE', `-DMEMLIM=${MEMLIM}`, '-w', '-o', 'pan', 'pan.c'],
      { cwd: dir, stdio: 'pipe' },
    );
    const started = Date.now();
    const pan = spawnSync('./pan', ['-m1000000'], { cwd: dir, encoding: 'utf8' });
    const seconds = (Date.now() - started) / 1000;
    const out = pan.stdout ?? '';
    const number = (pattern) => Number(out.match(pattern)?.[1] ?? NaN);
    const result = {
      name,
      seconds,
      states: number(/([\d.e+]+) states, stored/),
      memoryMiB: number(/([\d.]+)\s+total actual memory usage/),
      errors: number(/errors: (\d+)/),
      violated: out.match(/assertion violated \(([a-z0-9_]+)\|\|/)?.[1],
      incomplete: /Search not completed/.test(out) && !/assertion violated/.test(out),
      problem: /max search depth too small|out of memory|pan: reached -DMEMLIM/.test(out)
        ? out.match(/max search depth too small|out of memory|pan: reached -DMEMLIM/)[0]
        : undefined,
      trail: undefined,
    };
    if (/pan:\d+: invalid end state/.test(out)) result.violated = 'no_deadlock (invalid end state)';
    if (result.errors > 0 && trace) {
      const replay = spawnSync('spin', ['-t', ...flags, 'rotor.pml'], {
        cwd: dir,
        encoding: 'utf8',
      });
      result.trail = (replay.stdout ?? '')
        .split('\n')
        .filter((line) => line.includes('MSC:'))
        .map((line) => '      ' + line.trim().replace(/^MSC: /, ''))
        .join('\n');
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function summary(r) {
  const states = Number.isFinite(r.states) ? `${r.states.toLocaleString('en')} states` : '';
  return `${r.name}: ${states}, ${r.seconds.toFixed(1)} s, ${r.memoryMiB} MiB`;
}

let failed = 0;
const configs = { ...CONFIGS, ...(large ? LARGE : {}) };
for (const [name, config] of Object.entries(configs)) {
  if (only && !name.includes(only)) continue;
  const r = verify(name, config);
  const ok = r.errors === 0 && !r.incomplete && !r.problem;
  if (!ok) failed++;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${summary(r)}${r.violated ? ` -- violated ${r.violated}` : ''}${r.problem ? ` -- ${r.problem}` : ''}`,
  );
  if (r.trail) console.log(r.trail);
}
for (const { flag, config, expect } of FAILS) {
  const name = `${flag}=0 on ${config}`;
  if (only && !name.includes(only)) continue;
  const r = verify(name, { ...CONFIGS[config], [flag]: 0 });
  const ok = r.errors > 0 && expect.includes(r.violated);
  if (!ok) failed++;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${summary(r)} -- ${r.violated ? `violates ${r.violated}` : 'no violation found'}${ok ? '' : ` (expected ${expect.join(' or ')})`}`,
  );
  if (r.trail) console.log(r.trail);
}
if (failed) {
  console.error(`${failed} model check(s) failed`);
  process.exit(1);
}
