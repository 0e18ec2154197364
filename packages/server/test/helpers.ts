import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createServer, loadConfig, ManualClock, type RotorConfig } from '@rotor/server';

/** A fresh folder for one test file's databases, removed by `cleanup`. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let counter = 0;

/** A configuration for tests: a new SQLite file, the given overrides, everything else default. */
export function testConfig(dir: string, env: Record<string, string> = {}): RotorConfig {
  counter += 1;
  return loadConfig({ ROTOR_DATABASE_URL: `sqlite:${join(dir, `rotor-${counter}.db`)}`, ...env });
}

export interface TestServer {
  app: FastifyInstance;
  clock: ManualClock;
  config: RotorConfig;
}

/** A Rotor server on a new SQLite file with a manual clock, not listening (use `app.inject`). */
export async function startTestServer(
  dir: string,
  env: Record<string, string> = {},
): Promise<TestServer> {
  const config = testConfig(dir, env);
  const clock = new ManualClock(Date.now());
  const app = await createServer(config, { clock, logger: false });
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
