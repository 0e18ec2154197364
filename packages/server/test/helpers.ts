import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { inject } from 'vitest';
import { createServer, loadConfig, ManualClock, RotorError, type RotorConfig } from '@rotor/server';

/** A fresh folder for one test file's databases, removed by `cleanup`. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let counter = 0;

export type DialectName = 'sqlite' | 'postgres';

/** Superuser URL of the test PostgreSQL server (see global-setup.ts); empty when there is none. */
export const POSTGRES_URL = inject('postgresUrl');

/** Every store the suites run against, as kysely's own tests loop over dialects. */
export const DIALECTS: { name: DialectName; available: boolean }[] = [
  { name: 'sqlite', available: true },
  { name: 'postgres', available: POSTGRES_URL !== '' },
];

/** A new, empty database: an SQLite file in `dir`, or a new database on the test PostgreSQL. */
export async function newDatabaseUrl(dialect: DialectName, dir: string): Promise<string> {
  counter += 1;
  if (dialect === 'sqlite') return `sqlite:${join(dir, `rotor-${counter}.db`)}`;
  const name = `rotor_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A configuration for tests: a new database, the given overrides, everything else default. */
export async function testConfig(
  dir: string,
  env: Record<string, string> = {},
  dialect: DialectName = 'sqlite',
): Promise<RotorConfig> {
  return loadConfig({ ROTOR_DATABASE_URL: await newDatabaseUrl(dialect, dir), ...env });
}

export interface TestServer {
  app: FastifyInstance;
  clock: ManualClock;
  config: RotorConfig;
}

/** A Rotor server on a new database with a manual clock, not listening (use `app.inject`). */
export async function startTestServer(
  dir: string,
  env: Record<string, string> = {},
  dialect: DialectName = 'sqlite',
  options: { sqliteServerLock?: boolean } = {},
): Promise<TestServer> {
  const config = await testConfig(dir, env, dialect);
  const clock = new ManualClock(Date.now());
  const app = await createServer(config, { clock, logger: false, ...options });
  return { app, clock, config };
}

export const PASSWORD = 'correct horse battery';

/** Registers a user and returns its email. */
export async function registerUser(
  app: FastifyInstance,
  email = `user${++counter}@example.com`,
): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email, password: PASSWORD },
  });
  if (response.statusCode !== 201) throw new Error(`register failed: ${response.body}`);
  return email;
}

/** Logs in with the given delivery; returns the parsed body and the response. */
export async function login(
  app: FastifyInstance,
  email: string,
  delivery: 'split' | 'cookies' | 'body' = 'body',
  extra: Record<string, string> = {},
) {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { 'token-delivery': delivery, ...extra },
    payload: { email, password: PASSWORD },
  });
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`);
  return { body: response.json() as TokenBody, response };
}

export interface TokenBody {
  tokenType: string;
  accessToken?: string;
  expiresIn: number;
  refreshToken?: string;
  refreshExpiresIn: number;
  sessionId: string;
  user: { id: string; email: string; name: string | null; createdAt: string };
}

/** The `Set-Cookie` headers of a response, by cookie name. */
export function setCookies(response: LightMyRequestResponse | Response): Map<string, string> {
  const raw =
    'getSetCookie' in response.headers && typeof response.headers.getSetCookie === 'function'
      ? response.headers.getSetCookie()
      : ([] as string[]).concat((response as LightMyRequestResponse).headers['set-cookie'] ?? []);
  return new Map(raw.map((line) => [line.slice(0, line.indexOf('=')), line]));
}

/** The value of a cookie in a `Set-Cookie` line. */
export function cookieValue(line: string | undefined): string | undefined {
  if (line === undefined) return undefined;
  return line.slice(line.indexOf('=') + 1, line.indexOf(';'));
}

/** The attributes of a `Set-Cookie` line, lower-cased names, in a set for order-free checks. */
export function cookieAttributes(line: string): Set<string> {
  return new Set(
    line
      .split(';')
      .slice(1)
      .map((part) => part.trim())
      .map((part) => {
        const [name, ...value] = part.toLowerCase().split('=');
        return value.length ? `${name}=${value.join('=')}` : name!;
      }),
  );
}

/** The RotorError code a promise rejects with, or 'ok' when it resolves; other errors rethrow. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (error instanceof RotorError) return error.code;
    throw error;
  }
}
