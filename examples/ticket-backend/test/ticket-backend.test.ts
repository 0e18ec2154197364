// Three parties over real HTTP: Rotor (`rotor serve`, its own process), the backend (its own
// process, no Rotor import) and the client (this test). A ticket's expiry after 60 s is not waited
// for here: packages/server/test/login-tickets.test.ts proves it with a manual clock.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '@rotor/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startRotorProcess,
  type RotorProcess,
} from '../../../packages/server/test/rotor-process.js';
import { DIALECTS, newDatabase } from './databases.js';

const ADMIN_TOKEN = 'the-admin-token-of-this-test-0123456789';
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

interface Backend {
  url: string;
  output(): string;
  stop(): void;
}

/** `npm start` of the example, as its own process; resolves once it listens. */
async function startBackend(rotorUrl: string, adminToken: string): Promise<Backend> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, ROTOR_URL: rotorUrl, ROTOR_ADMIN_TOKEN: adminToken, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 10_000;
  while (!output.includes('backend on')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(output);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    stop: () => {
      child.kill('SIGKILL');
      process.off('exit', killOnExit);
    },
  };
}

/** Everything the client received, to prove the admin token never reached it. */
let seenByClient = '';

async function call(url: string, init: { method?: string; body?: unknown; headers?: object } = {}) {
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(init.body !== undefined && { 'content-type': 'application/json' }),
      ...init.headers,
    },
    body: init.body === undefined ? null : JSON.stringify(init.body),
  });
  const text = await response.text();
  seenByClient += JSON.stringify([...response.headers]) + text;
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

for (const dialect of DIALECTS) {
  describe.skipIf(!dialect.available)(`examples/ticket-backend [${dialect.name}]`, () => {
    let rotor: RotorProcess;
    let backend: Backend;
    let drop: () => void;

    beforeAll(async () => {
      const database = await newDatabase(dialect.name);
      drop = database.drop;
      rotor = await startRotorProcess({
        ROTOR_DATABASE_URL: database.url,
        ROTOR_ADMIN_TOKEN: ADMIN_TOKEN,
      });
      backend = await startBackend(rotor.url, ADMIN_TOKEN);
    });
    afterAll(async () => {
      backend?.stop();
      await rotor?.stop();
      drop?.();
    });

    /** The backend's own sign-in, as its client goes through it: a code by email, then the code. */
    async function signInAtBackend(via: Backend, email: string) {
      const mails = () => [
        ...via.output().matchAll(new RegExp(`email to ${email}: Your sign-in code: (\\d+)`, 'g')),
      ];
      const before = mails().length;
      expect((await call(`${via.url}/sign-in`, { body: { email } })).status).toBe(202);
      // The child's stdout is a separate pipe from its HTTP answer: the line can arrive after it.
      const deadline = Date.now() + 5_000;
      while (mails().length === before && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const code = mails().at(-1)![1]; // the latest email
      return call(`${via.url}/sign-in/verify`, { body: { email, code } });
    }

    it('the backend signs its user in, the client redeems the ticket at Rotor and calls both APIs', async () => {
      const verified = await signInAtBackend(backend, 'ada@tickets.example');
      expect(verified.status).toBe(200);
      expect(verified.body).toMatchObject({ rotorUrl: rotor.url, expiresIn: 60 });

      const login = await call(`${rotor.url}/auth/login`, {
        body: { ticket: verified.body.ticket },
        headers: { 'token-delivery': 'body' },
      });
      expect(login.status).toBe(200);
      expect(login.body.user.email).toBe('ada@tickets.example');
      const bearer = { authorization: `Bearer ${login.body.accessToken}` };
      expect((await call(`${rotor.url}/auth/me`, { headers: bearer })).body.user.id).toBe(
        login.body.user.id,
      );
      const whoami = await call(`${backend.url}/api/whoami`, { headers: bearer });
      expect(whoami).toEqual({
        status: 200,
        body: { email: 'ada@tickets.example', rotorUserId: login.body.user.id },
      });

      // A second sign-in is the same Rotor user, and a logout counts at the backend at once.
      const again = await signInAtBackend(backend, 'ada@tickets.example');
      const second = await call(`${rotor.url}/auth/login`, {
        body: { ticket: again.body.ticket },
        headers: { 'token-delivery': 'body' },
      });
      expect(second.body.user.id).toBe(login.body.user.id);
      const logout = await call(`${rotor.url}/auth/logout`, {
        body: { refreshToken: login.body.refreshToken },
      });
      expect(logout.status).toBe(204);
      expect((await call(`${backend.url}/api/whoami`, { headers: bearer })).status).toBe(401);
      expect(seenByClient).not.toContain(ADMIN_TOKEN);
    });

    it('a ticket works once: the second redemption is 401 invalid_credentials', async () => {
      const { body } = await signInAtBackend(backend, 'bob@tickets.example');
      const redeem = () => call(`${rotor.url}/auth/login`, { body: { ticket: body.ticket } });
      expect((await redeem()).status).toBe(200);
      const second = await redeem();
      expect(second.status).toBe(401);
      expect(second.body.error).toBe('invalid_credentials');
    });

    it('a wrong code is refused by the backend, and asks Rotor nothing', async () => {
      expect(
        (await call(`${backend.url}/sign-in`, { body: { email: 'eve@tickets.example' } })).status,
      ).toBe(202);
      const wrong = await call(`${backend.url}/sign-in/verify`, {
        body: { email: 'eve@tickets.example', code: '000000' },
      });
      expect(wrong).toEqual({ status: 401, body: { error: 'invalid_code' } });
    });

    it('a restarted backend, its table of Rotor ids lost, finds its user again through email_taken', async () => {
      const first = await signInAtBackend(backend, 'carol@tickets.example');
      const before = await call(`${rotor.url}/auth/login`, { body: { ticket: first.body.ticket } });
      const restarted = await startBackend(rotor.url, ADMIN_TOKEN);
      try {
        const verified = await signInAtBackend(restarted, 'carol@tickets.example');
        expect(verified.status).toBe(200);
        const after = await call(`${rotor.url}/auth/login`, {
          body: { ticket: verified.body.ticket },
        });
        expect(after.body.user.id).toBe(before.body.user.id);
      } finally {
        restarted.stop();
      }
    });

    it('a backend with a wrong admin token gets 401 from Rotor, and its client no ticket', async () => {
      const wrong = await startBackend(rotor.url, `${ADMIN_TOKEN}-but-wrong`);
      try {
        const verified = await signInAtBackend(wrong, 'dave@tickets.example');
        expect(verified).toEqual({ status: 502, body: { error: 'sign_in_unavailable' } });
        expect(wrong.output()).toContain('POST /admin/users: 401 invalid_token');
      } finally {
        wrong.stop();
      }
      const direct = await call(`${rotor.url}/admin/login-tickets`, {
        body: { userId: 'anyone' },
        headers: { authorization: `Bearer ${ADMIN_TOKEN}-but-wrong` },
      });
      expect(direct.status).toBe(401);
      expect(direct.body.error).toBe('invalid_token');
    });
  });
}
