// The processes a benchmark starts: Rotor itself (`rotor serve`, as users run it), peers, and load
// generators. Servers are pinned to CPU 0 and load generators to CPU 1 when `taskset` exists, so
// the server under test gets one core of its own, as in the issue's reference numbers.
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
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

/** Starts a Node server script pinned to CPU 0; resolves once `readyPath` answers. */
export async function startNodeServer(script, args, env, readyPath = '/healthz') {
  const port = await freePort();
  const [command, argv] = pinned(0, process.execPath, [script, ...args]);
  const child = spawn(command, argv, {
    env: { ...process.env, ...env, PORT: String(port), ROTOR_PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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
    async stop() {
      process.removeListener('exit', kill);
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/** The environment Rotor runs with in the benches, on `databaseUrl`: request logs off. */
export function rotorEnv(databaseUrl, env = {}) {
  return {
    ROTOR_HOST: '127.0.0.1',
    ROTOR_DATABASE_URL: databaseUrl,
    ROTOR_LOG_LEVEL: 'warn',
    ROTOR_PRUNE_INTERVAL: '0',
    // The benches sign up hundreds of users from one address and refresh each session many times
    // a second: the rate limits would answer 429, as they should to such a client.
    ROTOR_RATE_LIMIT: 'off',
    // A fixed issuer (by default it is the server's own URL, whose port changes), so tokens stay
    // valid when a bench restarts the server on the same database.
    ROTOR_ISSUER: 'http://rotor.bench',
    ...env,
  };
}

/** `rotor serve` on `databaseUrl`, request logs off (the bare route has none either). */
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
