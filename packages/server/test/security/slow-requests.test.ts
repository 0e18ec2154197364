import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@rotor/server';
import { startTestServer, tempDir } from '../helpers.js';

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
/** Node checks the timeouts once a second (create-server.ts); the rest is a loaded machine's slack. */
const MARGIN_MS = 2000;

const { dir, cleanup } = tempDir();
let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  ({ app } = await startTestServer(dir, {
    ROTOR_HEADERS_TIMEOUT: `${HEADERS_TIMEOUT_MS / 1000}s`,
    ROTOR_REQUEST_TIMEOUT: `${REQUEST_TIMEOUT_MS / 1000}s`,
  }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await app?.close();
  cleanup();
});

interface Dripped {
  /** From the first byte sent to the server closing the connection; undefined if it never did. */
  closedAfterMs: number | undefined;
  /** Everything the server sent back. */
  answer: string;
}

/**
 * A slow client over a real socket: writes `head` at once, then one byte of `drip` every `everyMs`
 * (starting over when it runs out), until the server closes the connection or `giveUpMs` passed.
 */
function drip(head: string, slow: string, everyMs: number, giveUpMs = 8000): Promise<Dripped> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let sent = 0;
    let startedAt = 0;
    let ticker: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => finish(undefined), giveUpMs);
    const finish = (closedAfterMs: number | undefined) => {
      clearInterval(ticker);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closedAfterMs, answer });
    };
    socket.on('connect', () => {
      startedAt = performance.now();
      if (head !== '') socket.write(head);
      if (slow !== '') {
        ticker = setInterval(() => socket.write(slow[sent++ % slow.length]!), everyMs);
      }
    });
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (answer += chunk));
    // Writing into a connection the server has just reset is part of the game.
    socket.on('error', () => {});
    socket.on('close', () => finish(performance.now() - startedAt));
  });
}

// Concurrent: each case waits for the server's timers, and none disturbs another's connection.
describe.concurrent('slow clients are cut (ROTOR_HEADERS_TIMEOUT, ROTOR_REQUEST_TIMEOUT)', () => {
  it('headers sent one byte every 500 ms are cut after the headers timeout with a 408', async ({
    expect,
  }) => {
    const { closedAfterMs, answer } = await drip(
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n',
      'X-Slow: never-ending-header-value-',
      500,
    );
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
    expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + MARGIN_MS);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    // In the JSON error shape of every other error (http/client-errors.ts).
    expect(answer).toContain('{"error":"request_timeout","message":');
  });

  it('a connection that never sends a byte is closed after the headers timeout', async ({
    expect,
  }) => {
    const { closedAfterMs } = await drip('', '', 500);
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + MARGIN_MS);
  });

  it('a body sent one byte every 500 ms is cut after the request timeout with a 408', async ({
    expect,
  }) => {
    const { closedAfterMs, answer } = await drip(
      'POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        'Content-Length: 1000\r\n\r\n',
      '{"email":"slow@example.com","password":"x"}',
      500,
    );
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    expect(closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('{"error":"request_timeout","message":');
  });

  it('a request sent at once is answered, and its keep-alive connection outlives the timeouts', async ({
    expect,
  }) => {
    const get = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    const answers = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(get));
      let answer = '';
      let again = false;
      socket.setEncoding('latin1');
      socket.on('error', reject);
      socket.on('data', (chunk: string) => {
        answer += chunk;
        // A JSON body ends without a newline, so the second status line follows it directly.
        const count = answer.split('HTTP/1.1 ').length - 1;
        if (count === 1 && !again) {
          again = true;
          // Idle between requests for longer than both timeouts: keepAliveTimeout governs that.
          setTimeout(() => socket.write(get), REQUEST_TIMEOUT_MS + 500);
        } else if (count === 2) {
          socket.destroy();
          resolve(answer);
        }
      });
      socket.on('close', () => resolve(answer));
    });
    expect(answers.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    const login = await fetch(`http://127.0.0.1:${port}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'nobody@example.com', password: 'wrong password' }),
    });
    expect(login.status).toBe(401);
  });
});

describe('ROTOR_HEADERS_TIMEOUT and ROTOR_REQUEST_TIMEOUT at start-up', () => {
  it('default to 10 s and 30 s, both well under a minute', () => {
    expect(loadConfig({})).toMatchObject({ headersTimeoutSeconds: 10, requestTimeoutSeconds: 30 });
  });

  it('reach the Node HTTP server, with a check every second', () => {
    expect(app.server.headersTimeout).toBe(HEADERS_TIMEOUT_MS);
    expect(app.server.requestTimeout).toBe(REQUEST_TIMEOUT_MS);
  });

  it.each([
    [{ ROTOR_HEADERS_TIMEOUT: '0' }, 'ROTOR_HEADERS_TIMEOUT'],
    [{ ROTOR_REQUEST_TIMEOUT: 'soon' }, 'ROTOR_REQUEST_TIMEOUT'],
    [{ ROTOR_HEADERS_TIMEOUT: '40s' }, 'ROTOR_HEADERS_TIMEOUT'],
    [{ ROTOR_HEADERS_TIMEOUT: '5s', ROTOR_REQUEST_TIMEOUT: '4s' }, 'ROTOR_HEADERS_TIMEOUT'],
  ])('refuses %o, naming %s', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(`^${variable}: `));
  });
});
