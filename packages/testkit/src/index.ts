/**
 * `@rotor/testkit` (private): what Rotor's tests and benchmarks share, free loopback ports,
 * throwaway PostgreSQL servers and a TCP proxy that cuts connections, so each suite does not grow
 * its own copy.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export { startTcpProxy, type ProxiedConnection, type TcpProxy } from './tcp-proxy.js';

/** The folder of PostgreSQL's server binaries (initdb, pg_ctl), or undefined when none is installed. */
export function findPostgresBin(): string | undefined {
  const candidates: string[] = [];
  const config = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (config.status === 0) candidates.push(config.stdout.trim());
  if (existsSync('/usr/lib/postgresql')) {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  }
  return candidates.find(
    (dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')),
  );
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface PostgresServer {
  /** Superuser URL of the `postgres` database. */
  url: string;
  port: number;
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  /** Stops the server and removes its folder. */
  destroy(): void;
}

export interface StartPostgresOptions {
  /** `off` (default, tests): no fsync at all; `on` (benchmarks): PostgreSQL's own defaults. */
  durability?: 'on' | 'off';
  /** More `name=value` server settings. */
  settings?: string[];
}

/**
 * A throwaway PostgreSQL server: initdb into a temporary folder, listening on 127.0.0.1 on a free
 * port, durability off unless asked (test data only). initdb refuses to run as root, so as root it
 * runs as the `postgres` user that Debian's package creates.
 */
export async function startPostgres(
  bin: string,
  { durability = 'off', settings = [] }: StartPostgresOptions = {},
): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (command: string, args: string[]) => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, command), ...args]]
      : [join(bin, command), args];
    execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  };
  if (asRoot) {
    const { uid, gid } = postgresUser();
    chownSync(dir, uid, gid);
  }
  run('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--no-locale',
    '--no-sync',
  ]);
  const port = await freePort();
  const options = [
    '-c listen_addresses=127.0.0.1',
    `-p ${port}`,
    `-k ${dir}`,
    '-c max_connections=300',
    ...(durability === 'off'
      ? ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']
      : []),
    ...settings.map((setting) => `-c ${setting}`),
  ].join(' ');
  const start = () =>
    run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', options, '-w', '-t', '30', 'start']);
  const stop = (mode: 'fast' | 'immediate' = 'fast') => {
    try {
      run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '30', 'stop']);
    } catch {
      // already stopped
    }
  };
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    destroy() {
      stop('immediate');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresUser(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** A throwaway Redis server on a free loopback port. */
export interface RedisServer {
  url: string;
  /** Kills the server (it keeps no data: no RDB, no AOF). */
  stop(): void;
}

/** The redis-server binary, or undefined when Redis is not installed. */
export function findRedisServer(): string | undefined {
  return ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
}

/**
 * Starts `redis-server` on 127.0.0.1 and a free port, without persistence, and waits until it
 * answers PING.
 */
export async function startRedis(bin = findRedisServer()): Promise<RedisServer> {
  if (!bin) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const port = await freePort();
  const child = spawn(
    bin,
    ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const stop = () => void child.kill('SIGKILL');
  for (let i = 0; i < 100; i += 1) {
    const ping = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' });
    if (ping.stdout?.trim() === 'PONG') return { url: `redis://127.0.0.1:${port}`, stop };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  stop();
  throw new Error('redis-server did not start');
}
