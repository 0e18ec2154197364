import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { freePort } from '@rotor/testkit';

const require = createRequire(import.meta.url);
const packageJson = require.resolve('@rotor/server/package.json');
/** The `rotor` command as installed: the package's `bin`. */
export const ROTOR_BIN = join(
  dirname(packageJson),
  (require(packageJson) as { bin: { rotor: string } }).bin.rotor,
);

export interface RotorProcess {
  url: string;
  port: number;
  child: ChildProcess;
  logs(): string;
  /** SIGKILL: no cleanup at all, as in a crash. */
  kill(): Promise<void>;
  /** SIGTERM: graceful shutdown; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `rotor serve` as its own process on a free loopback port (or the given one), with Node's
 * `nodeArgs` when given, and waits until it listens. The process is killed when the test process exits, whatever happens.
 */
export async function startRotorProcess(
  env: Record<string, string>,
  port?: number,
  nodeArgs: string[] = [],
): Promise<RotorProcess> {
  const chosen = port ?? (await freePort());
  const child = spawn(process.execPath, [...nodeArgs, ROTOR_BIN, 'serve'], {
    env: {
      ...process.env,
      ...env,
      // Info at least: readiness is read from the "Server listening" line.
      ROTOR_LOG_LEVEL: 'info',
      ROTOR_HOST: '127.0.0.1',
      ROTOR_PORT: String(chosen),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let logs = '';
  child.stdout!.on('data', (chunk: Buffer) => (logs += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (logs += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const deadline = Date.now() + 20_000;
  while (!logs.includes('Server listening')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`rotor serve did not start:\n${logs}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url: `http://127.0.0.1:${chosen}`,
    port: chosen,
    child,
    logs: () => logs,
    async kill() {
      child.kill('SIGKILL');
      await exited;
      process.off('exit', killOnExit);
    },
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      process.off('exit', killOnExit);
      return code;
    },
  };
}

/**
 * Two `rotor serve` processes on one PostgreSQL database, as two instances of a deployment: one
 * issuer, so an access token of one is valid on the other; the first starts alone (it runs the
 * migrations). On SQLite, one server per file is the rule a second server is refused by (issue 15,
 * item 7): the "pair" is that one process twice, and the attacks still come over many sockets.
 */
export async function startRotorPair(env: Record<string, string>): Promise<RotorProcess[]> {
  const shared = { ROTOR_ISSUER: 'https://auth.example.test', ...env };
  const first = await startRotorProcess(shared);
  if (env.ROTOR_DATABASE_URL?.startsWith('sqlite:')) return [first, first];
  return [first, await startRotorProcess(shared)];
}

/** A small JSON client for tests over real HTTP. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: {
    body?: unknown;
    token?: string;
    headers?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(options.body !== undefined && { 'content-type': 'application/json' }),
      ...(options.token && { authorization: `Bearer ${options.token}` }),
      ...options.headers,
    },
    body: options.body === undefined ? null : JSON.stringify(options.body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    ms: performance.now() - started,
  };
}
