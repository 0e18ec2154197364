// The processes a benchmark starts: Rotor itself (`rotor serve`, as users run it), peers, and load
// generators. Servers are pinned to CPU 0 and load generators to CPU 1 when `taskset` exists, so
// the server under test gets one core of its own, as in the issue's reference numbers.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { freePort } from '@rotor/testkit';

const require = createRequire(import.meta.url);
const serverPackage = require.resolve('@rotor/server/package.json');
export const ROTOR_BIN = join(dirname(serverPackage), require(serverPackage).bin.rotor);

export const HAS_TASKSET = spawnSync('taskset', ['-V']).status === 0;

/** `[command, args]` running `file args` on `cpu` when pinning is possible. */
export function pinned(cpu, file, args) {
  return HAS_TASKSET ? ['taskset', ['-c', String(cpu), file, ...args]] : [file, args];
}

/**
 * Starts a Node server script pinned to CPU 0; resolves once `readyPath` answers. Its stdout (the
 * request logs) goes to a file, as `npm start > rotor.log` would, deleted when it stops.
 */
export async function startNodeServer(script, args, env, readyPath = '/healthz') {
  const port = await freePort();
  const [command, argv] = pinned(0, process.execPath, [script, ...args]);
  const logDir = mkdtempSync(join(tmpdir(), 'rotor-bench-log-'));
  const logFd = openSync(join(logDir, 'stdout.log'), 'w');
  const child = spawn(command, argv, {
    env: { ...process.env, ...env, PORT: String(port), ROTOR_PORT: String(port) },
    stdio: ['ignore', logFd, 'pipe'],
  });
  closeSync(logFd);
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited:\n${stderr}`);
    if (Date.now() > deadline) throw new Error(`${script} did not start:\n${stderr}`);
    try {
      if ((await fetch(url + readyPath)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    pid: child.pid,
    /** Bytes the server wrote to stdout so far (its request logs). */
    logBytes() {
      return statSync(join(logDir, 'stdout.log')).size;
    },
    async stop() {
      process.removeListener('exit', kill);
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      rmSync(logDir, { recursive: true, force: true });
    },
  };
}

/**
 * What a row changes of Rotor's defaults to show what they cost: request logs at `warn` (none
 * written for answered requests) and the rate limits off. Every row runs at the defaults unless it
 * says otherwise (issue 19).
 */
export const WARN_LIMITS_OFF = { ROTOR_LOG_LEVEL: 'warn', ROTOR_RATE_LIMIT: 'off' };

/**
 * The environment Rotor runs with in the benches, on `databaseUrl`: its defaults (request logs at
 * `info`, rate limits on), the pruning job off and a fixed issuer.
 */
export function rotorEnv(databaseUrl, env = {}) {
  return {
    ROTOR_HOST: '127.0.0.1',
    ROTOR_DATABASE_URL: databaseUrl,
    ROTOR_PRUNE_INTERVAL: '0',
    // A fixed issuer (by default it is the server's own URL, whose port changes), so tokens stay
    // valid when a bench restarts the server on the same database.
    ROTOR_ISSUER: 'http://rotor.bench',
    ...env,
  };
}

/** `rotor serve` on `databaseUrl` at its defaults, `env` changing some. */
export function startRotor(databaseUrl, env = {}) {
  return startNodeServer(ROTOR_BIN, ['serve'], rotorEnv(databaseUrl, env));
}

/** Peak resident memory of a process, in MiB (Linux `VmHWM`); undefined elsewhere. */
export async function peakMemoryMiB(pid) {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
