import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createServer } from '@rotor/server';
import { tempDir, testConfig } from './helpers.js';

const run = promisify(execFile);
const README = join(dirname(fileURLToPath(import.meta.url)), '../../../README.md');
const { dir, cleanup } = tempDir();

/** The shell block that follows `marker` in the README, as written there. */
function shellBlockAfter(marker: string): string {
  const text = readFileSync(README, 'utf8');
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no "${marker}"`);
  const start = text.indexOf('```sh\n', at) + '```sh\n'.length;
  return text.slice(start, text.indexOf('```\n', start));
}

/**
 * The README's quick start is executed, not just read (issue 14): its curl block runs in order,
 * as written, against a fresh server. Only the address changes (a free port instead of 3000).
 */
describe('README quick start', () => {
  let app: FastifyInstance;
  let port: number;
  beforeAll(async () => {
    app = await createServer(await testConfig(dir), { logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await app.close();
    cleanup();
  });

  it('the curl block runs in order against a fresh server, and every answer is a success', async () => {
    const script = shellBlockAfter('Try it with curl').replaceAll(
      'localhost:3000',
      `127.0.0.1:${port}`,
    );
    // The server runs in this process: the shell must run beside it, not block it.
    const { stdout, stderr } = await run('bash', ['-e', '-u', '-o', 'pipefail', '-c', script], {
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
      timeout: 20_000,
    });
    expect(stderr).toBe('');
    // Every answer printed is a success: no error shape anywhere.
    expect(stdout).not.toContain('"error"');
    // What each step printed, in order: the user, the login, /auth/me, the sessions, the events.
    expect(stdout).toContain('"email":"ada@example.com"');
    expect(stdout).toContain('"deviceToken":"ey');
    expect(stdout).toMatch(/"sessions":\[.*"deviceName":"phone".*"current":true.*\]/);
    expect(stdout).toContain('"type":"session_revoked"');
    // The revocation, the password change and the logout print their status: 204 each.
    expect(stdout.match(/^204$/gm)).toHaveLength(3);
    // And the server agrees: the password changed.
    const login = await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'ada@example.com', password: 'a brand new passphrase' },
    });
    expect(login.statusCode).toBe(200);
  });

  it('the forgot-password block runs after it: the mailed token resets the password', async () => {
    const script = shellBlockAfter('Forgot password with curl').replaceAll(
      'localhost:3000',
      `127.0.0.1:${port}`,
    );
    const { stdout, stderr } = await run('bash', ['-e', '-u', '-o', 'pipefail', '-c', script], {
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
      timeout: 20_000,
    });
    expect(stderr).toBe('');
    expect(stdout).not.toContain('"error"');
    expect(stdout).toContain('"sessionsEnded"');
    const login = await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'ada@example.com', password: 'a passphrase after the reset' },
    });
    expect(login.statusCode).toBe(200);
  });
});
