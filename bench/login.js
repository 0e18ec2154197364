// Row 4 of `npm run bench`: POST /auth/login per second on `rotor serve` (SQLite, pinned to one
// core) against the limit, argon2id verification alone at the same parameters in this process,
// and the server's peak memory. Logins are hashing-bound by design.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hash, verify } from '@node-rs/argon2';
import { peakMemoryMiB, startRotor } from './lib/processes.js';
import { percentile } from './lib/stats.js';
import { PASSWORD, signInUsers } from './lib/users.js';

/** OWASP's first argon2id choice (Password Storage Cheat Sheet): 19 MiB, t=2, p=1; Rotor's too. */
export const OWASP_ARGON2ID = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };
/** `Algorithm.Argon2id` of @node-rs/argon2 (a const enum, so its value), as Rotor hashes. */
const ARGON2ID = 2;

export async function benchLogin({ seconds = 8, concurrency = 4 } = {}) {
  const stored = await hash(PASSWORD, { ...OWASP_ARGON2ID, algorithm: ARGON2ID });
  let raw = 0;
  const rawStarted = performance.now();
  while (performance.now() - rawStarted < seconds * 1000) {
    await verify(stored, PASSWORD);
    raw += 1;
  }
  const rawPerSecond = (raw * 1000) / (performance.now() - rawStarted);

  const dir = mkdtempSync(join(tmpdir(), 'rotor-bench-login-'));
  const server = await startRotor(`sqlite:${join(dir, 'rotor.db')}`);
  try {
    const [{ email }] = await signInUsers(server.url, 1, 'login');
    const latencies = [];
    const deadline = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          const response = await fetch(`${server.url}/auth/login`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'token-delivery': 'body' },
            body: JSON.stringify({ email, password: PASSWORD }),
          });
          if (!response.ok) throw new Error(`login: ${response.status}`);
          await response.arrayBuffer();
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const perSecond = (latencies.length * 1000) / (performance.now() - started);
    return {
      rawPerSecond,
      perSecond,
      ratio: perSecond / rawPerSecond,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      peakMiB: await peakMemoryMiB(server.pid),
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
