import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer as createTcpServer } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createRotor, loadConfig } from '@rotor/server';
import { PASSWORD, tempDir } from './helpers.js';
import { freePort } from '@rotor/testkit';
import { ROTOR_BIN } from './rotor-process.js';

const run = promisify(execFile);
const bin = ROTOR_BIN;
const { dir, cleanup } = tempDir();
afterAll(cleanup);

const env = {
  ...process.env,
  ROTOR_DATABASE_URL: `sqlite:${join(dir, 'cli.db')}`,
  ROTOR_LOG_LEVEL: 'warn',
};

async function rotor(args: string[], extraEnv: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], {
      env: { ...env, ...extraEnv },
      // A `serve` that should have refused to start is stopped, not left listening.
      timeout: 20_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('rotor CLI', () => {
  it('--help lists the commands, and each command has its own help', async () => {
    const help = await rotor(['--help']);
    for (const command of ['serve', 'migrate', 'prune', 'keys', 'users', 'sessions'])
      expect(help.stdout).toContain(command);
    const revoke = await rotor(['sessions', 'revoke', '--help']);
    expect(revoke.stdout).toMatch(/--email[\s\S]*--id[\s\S]*--all/);
  });

  it('migrate, users create, sessions list and revoke work on one database', async () => {
    expect((await rotor(['migrate'])).stdout).toMatch(/applied: 0001_core|up to date/);
    expect((await rotor(['migrate'])).stdout).toContain('up to date');
    const created = await rotor(
      ['users', 'create', '--email', 'Cli@Example.com', '--name', 'Cli'],
      {
        ROTOR_USER_PASSWORD: 'correct horse battery',
      },
    );
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout).user.email).toBe('cli@example.com');

    const listed = await rotor(['sessions', 'list', '--email', 'cli@example.com']);
    expect(JSON.parse(listed.stdout)).toEqual({ sessions: [] });
    expect(
      (await rotor(['sessions', 'revoke', '--email', 'cli@example.com', '--all'])).stdout,
    ).toContain('revoked 0');
    const both = await rotor(['sessions', 'revoke', '--email', 'cli@example.com']);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('exactly one of --id ID or --all');
    const rotated = JSON.parse((await rotor(['keys', 'rotate'])).stdout).rotated;
    const keys = JSON.parse((await rotor(['keys', 'list'])).stdout).keys as {
      kid: string;
      signing: boolean;
      retiresAt: string | null;
    }[];
    expect(keys).toHaveLength(2);
    expect(keys.find((k) => k.signing)?.kid).toBe(rotated.kid);
    expect(keys.find((k) => !k.signing)?.retiresAt).toMatch(/^\d{4}-/);
    const pruned = await rotor(['prune']);
    expect(JSON.parse(pruned.stdout).pruned).toMatchObject({ sessions: 0, rotatedTokens: 0 });
    const unknown = await rotor(['sessions', 'list', '--email', 'nobody@example.com']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('not_found');
  });

  it("keys rotate --retire-now: a running server refuses the old key's tokens within a second; a refresh gets a new one", async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [bin, 'serve'], {
      env: { ...env, ROTOR_PORT: String(port), ROTOR_RATE_LIMIT: 'off' },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      await expect
        .poll(
          () =>
            fetch(`${base}/healthz`).then(
              (r) => r.status,
              () => 0,
            ),
          { timeout: 10_000 },
        )
        .toBe(200);
      const email = 'leaked@example.com';
      const password = 'correct horse battery';
      await rotor(['users', 'create', '--email', email, '--password', password]);
      const login = await fetch(`${base}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'token-delivery': 'body' },
        body: JSON.stringify({ email, password }),
      });
      const tokens = (await login.json()) as { accessToken: string; refreshToken: string };
      const me = (token: string) =>
        fetch(`${base}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
      expect((await me(tokens.accessToken)).status).toBe(200);

      const rotated = await rotor(['keys', 'rotate', '--retire-now']);
      expect(JSON.parse(rotated.stdout)).toMatchObject({ retired: 'now' });
      await expect
        .poll(async () => (await (await me(tokens.accessToken)).json()) as { error?: string }, {
          timeout: 3_000,
          interval: 100,
        })
        .toMatchObject({ error: 'invalid_token' });
      const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as {
        keys: { kid: string }[];
      };
      expect(jwks.keys.map((k) => k.kid)).toEqual([JSON.parse(rotated.stdout).rotated.kid]);

      const refreshed = await fetch(`${base}/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'token-delivery': 'body' },
        body: JSON.stringify({ refreshToken: tokens.refreshToken }),
      });
      expect(refreshed.status).toBe(200);
      const next = (await refreshed.json()) as { accessToken: string };
      expect((await me(next.accessToken)).status).toBe(200);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('an invalid setting stops start-up with a message naming the variable', async () => {
    const result = await rotor(['serve'], { ROTOR_ACCESS_TTL: 'soon' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ROTOR_ACCESS_TTL');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('serve answers on its port and shuts down gracefully on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [bin, 'serve'], {
      env: { ...env, ROTOR_PORT: String(port), ROTOR_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    child.stdout.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await expect.poll(() => logs, { timeout: 10_000 }).toContain('Server listening');
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });
      const login = await fetch(`http://127.0.0.1:${port}/auth/login`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          cookie: 'rotor_refresh=secret-cookie-value',
        },
        body: JSON.stringify({ email: 'cli@example.com', password: 'correct horse battery' }),
      });
      const tokens = (await login.json()) as { accessToken: string };
      expect(login.status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(logs).toContain('shutting down');
      // Logs carry request ids but never a token, cookie or password.
      expect(logs).toMatch(/"reqId":"[0-9a-f-]{36}"/);
      for (const secret of [tokens.accessToken, 'secret-cookie-value', 'correct horse battery']) {
        expect(logs).not.toContain(secret);
      }
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("sessions revoke --all is an operator's act: the devices learn reason admin", async () => {
    const url = `sqlite:${join(dir, 'admin.db')}`;
    const engine = await createRotor(loadConfig({ ROTOR_DATABASE_URL: url }), {
      sqliteServerLock: false,
    });
    try {
      await engine.register({ email: 'admin@example.com', password: PASSWORD });
      const grant = await engine.login({
        email: 'admin@example.com',
        password: PASSWORD,
        deviceName: 'laptop',
        delivery: 'body',
        ip: '192.0.2.1',
        userAgent: 'curl/8',
      });
      const revoked = await rotor(['sessions', 'revoke', '--email', 'admin@example.com', '--all'], {
        ROTOR_DATABASE_URL: url,
      });
      expect(revoked.stdout).toContain('revoked 1');
      await expect(
        engine.refresh({ refreshToken: grant.refreshToken, ip: null, userAgent: null }),
      ).rejects.toMatchObject({ code: 'session_revoked', details: { reason: 'admin' } });
    } finally {
      await engine.close();
    }
  });

  it('sessions list leaves "current" out: the command line is signed in to none of them', async () => {
    const url = `sqlite:${join(dir, 'current.db')}`;
    const engine = await createRotor(loadConfig({ ROTOR_DATABASE_URL: url }));
    try {
      await engine.register({ email: 'current@example.com', password: PASSWORD });
      await engine.login({
        email: 'current@example.com',
        password: PASSWORD,
        deviceName: 'laptop',
        delivery: 'body',
        ip: '192.0.2.1',
        userAgent: 'curl/8',
      });
    } finally {
      await engine.close();
    }
    const listed = await rotor(['sessions', 'list', '--email', 'current@example.com'], {
      ROTOR_DATABASE_URL: url,
    });
    const sessions = JSON.parse(listed.stdout).sessions as Record<string, unknown>[];
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ deviceName: 'laptop' });
    expect(sessions[0]).not.toHaveProperty('current');
  });
});

describe('rotor on a fresh clone', () => {
  const packageDir = dirname(createRequire(import.meta.url).resolve('@rotor/server/package.json'));

  it('the bin is a committed executable file outside dist, so npm links it before the build', async () => {
    const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
      bin: { rotor: string };
      files: string[];
    };
    const bin = pkg.bin.rotor.replace(/^\.\//, '');
    expect(bin).not.toMatch(/^dist\//);
    expect(pkg.files).toContain(bin.split('/')[0]);
    const { stdout } = await run('git', ['ls-files', '--stage', '--', bin], { cwd: packageDir });
    // Mode 100755: a bin npm links from a clone must be executable as committed.
    expect(stdout).toMatch(new RegExp(`^100755 [0-9a-f]+ 0\t${bin}\n$`));
    expect(readFileSync(join(packageDir, bin), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('the bin without a build says to run npm run build, in one line', async () => {
    const clone = join(dir, 'unbuilt');
    mkdirSync(join(clone, 'bin'), { recursive: true });
    copyFileSync(ROTOR_BIN, join(clone, 'bin', 'rotor.js'));
    const result = await run(process.execPath, [join(clone, 'bin', 'rotor.js'), '--help'], {
      env,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('run npm run build');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('the errors a user meets first stop rotor with one line naming the setting', () => {
  function expectOneLine(stderr: string) {
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at /);
  }

  it('a port in use names ROTOR_PORT and the port, exit code 1, no stack', async () => {
    const blocker = createTcpServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)),
    );
    try {
      const result = await rotor(['serve'], { ROTOR_PORT: String(port) });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('ROTOR_PORT');
      expect(result.stderr).toContain(`port ${port}`);
      expect(result.stderr).toContain('already in use');
      expectOneLine(result.stderr);
    } finally {
      blocker.close();
    }
  });

  it('a SQLite file whose folder is missing names the path and ROTOR_DATABASE_URL', async () => {
    const path = join(dir, 'no-such-folder', 'rotor.db');
    const result = await rotor(['serve'], {
      ROTOR_DATABASE_URL: `sqlite:${path}`,
      ROTOR_PORT: String(await freePort()),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ROTOR_DATABASE_URL');
    expect(result.stderr).toContain(path);
    expectOneLine(result.stderr);
  });

  it('a PostgreSQL that cannot be reached names the URL without its password and ROTOR_DATABASE_URL', async () => {
    const port = await freePort();
    const url = `postgres://rotor:hunter2-secret@127.0.0.1:${port}/rotor`;
    for (const command of [['serve'], ['migrate']]) {
      const result = await rotor(command, {
        ROTOR_DATABASE_URL: url,
        ROTOR_PORT: String(await freePort()),
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('ROTOR_DATABASE_URL');
      expect(result.stderr).toContain(`postgres://rotor:***@127.0.0.1:${port}/rotor`);
      expect(result.stderr).not.toContain('hunter2-secret');
      expectOneLine(result.stderr);
    }
  });

  it('ROTOR_ACCESS_TTL longer than ROTOR_REFRESH_TTL stops serve naming both', async () => {
    const result = await rotor(['serve'], {
      ROTOR_ACCESS_TTL: '2h',
      ROTOR_REFRESH_TTL: '1h',
      ROTOR_PORT: String(await freePort()),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/ROTOR_ACCESS_TTL.*ROTOR_REFRESH_TTL/);
    expectOneLine(result.stderr);
  });
});
