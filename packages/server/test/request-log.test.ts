import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig } from '@rotor/server';
import { tempDir } from './helpers.js';
import { startRotorProcess, type RotorProcess } from './rotor-process.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  method?: string;
  url?: string;
  route?: string;
  status?: number;
  responseTimeMs?: number;
  error?: string;
  err?: { message: string };
}

function lines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

const SECRET = 'secret-in-the-query-0123456789';
const BEARER = 'not-a-token-but-secret-9876543210';

/**
 * `count` requests of three kinds: a query string carrying a "token", a refused bearer token (its
 * code in the line), an unknown path. Returns the request id each answer carried.
 */
async function requests(server: RotorProcess, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const response =
      i % 3 === 0
        ? await fetch(`${server.url}/healthz?token=${SECRET}`)
        : i % 3 === 1
          ? await fetch(`${server.url}/auth/me`, { headers: { authorization: `Bearer ${BEARER}` } })
          : await fetch(`${server.url}/no/such/path?code=${SECRET}`);
    await response.arrayBuffer();
    ids.push(response.headers.get('x-request-id')!);
  }
  return ids;
}

function expectRequestLines(logs: string, ids: string[]): LogLine[] {
  const requestLines = lines(logs).filter((line) => line.msg === 'request completed');
  // One line per request: Fastify's "incoming request" is gone, and a refusal has no line of its own.
  // (In the order the answers finished writing, which is not always the order they were received.)
  const byId = new Map(requestLines.map((line) => [line.reqId, line]));
  expect(requestLines.map((line) => line.reqId).sort()).toEqual([...ids].sort());
  expect(logs).not.toContain('incoming request');
  expect(logs).not.toContain('request refused');
  for (const [i, id] of ids.entries()) {
    const line = byId.get(id)!;
    expect(line.level).toBe(30);
    expect(line.method).toBe('GET');
    expect(line.url).not.toContain('?');
    expect(typeof line.responseTimeMs).toBe('number');
    if (i % 3 === 0)
      expect(line).toMatchObject({ url: '/healthz', route: '/healthz', status: 200 });
    if (i % 3 === 1) {
      expect(line).toMatchObject({ route: '/auth/me', status: 401, error: 'invalid_token' });
    }
    if (i % 3 === 2) {
      expect(line).toMatchObject({ url: '/no/such/path', route: 'unmatched', status: 404 });
      expect(line.error).toBe('not_found');
    }
  }
  expect(logs).not.toContain(SECRET);
  expect(logs).not.toContain(BEARER);
  return requestLines;
}

describe('request log of rotor serve', () => {
  it('writes one line per request at info, without query strings or credentials, and flushes every line on SIGTERM', async () => {
    const server = await startRotorProcess({
      ROTOR_DATABASE_URL: `sqlite:${join(dir, 'serve.db')}`,
    });
    try {
      const ids = await requests(server, 30);
      // Ids in a UUID's shape, unique, from one random prefix and a counter (request-id.ts).
      expect(new Set(ids).size).toBe(30);
      for (const id of ids)
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      // Stopped right after the last answer: its line and "shutting down" are still written.
      expect(await server.stop()).toBe(0);
      expectRequestLines(server.logs(), ids);
      const all = lines(server.logs());
      expect(all.at(-1)).toMatchObject({ msg: 'shutting down' });
    } finally {
      await server.kill();
    }
  });

  it('a crash writes a fatal line after every line logged before it, and exits 1', async () => {
    // A real crash in the real process: an exception thrown from a signal handler, uncaught.
    const crasher = join(dir, 'crash-on-sigusr2.mjs');
    writeFileSync(
      crasher,
      "process.on('SIGUSR2', () => { throw new Error('crash for the test'); });\n",
    );
    const server = await startRotorProcess(
      { ROTOR_DATABASE_URL: `sqlite:${join(dir, 'crash.db')}` },
      undefined,
      ['--import', pathToFileURL(crasher).href],
    );
    try {
      const ids = await requests(server, 12);
      const exited = new Promise<number | null>((resolve) =>
        server.child.once('exit', (code) => resolve(code)),
      );
      server.child.kill('SIGUSR2');
      expect(await exited).toBe(1);
      expectRequestLines(server.logs(), ids);
      expect(lines(server.logs()).at(-1)).toMatchObject({
        level: 60,
        msg: 'uncaught exception',
        err: { message: 'crash for the test' },
      });
    } finally {
      await server.kill();
    }
  });
});

describe('request log of createServer', () => {
  async function serverLogging(level: string) {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    const config = loadConfig({
      ROTOR_DATABASE_URL: `sqlite:${join(dir, `in-process-${level}.db`)}`,
      ROTOR_LOG_LEVEL: level,
    });
    // A caller's own logger is kept, and still gets one line per request.
    const app = await createServer(config, { logger: { level, stream } });
    return { app, text: () => text };
  }

  it('at info, one line per request through the caller’s own logger', async () => {
    const { app, text } = await serverLogging('info');
    try {
      const response = await app.inject({ method: 'GET', url: '/healthz?token=abc' });
      const line = lines(text()).find((l) => l.msg === 'request completed');
      expect(line).toMatchObject({
        reqId: response.headers['x-request-id'],
        url: '/healthz',
        status: 200,
      });
    } finally {
      await app.close();
    }
  });

  it('above info, no request line', async () => {
    const { app, text } = await serverLogging('warn');
    try {
      await app.inject({ method: 'GET', url: '/healthz' });
      await app.inject({ method: 'GET', url: '/auth/me' });
      expect(text()).not.toContain('request completed');
    } finally {
      await app.close();
    }
  });
});
