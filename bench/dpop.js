// Row 7 of `npm run bench` (issue 18): what a DPoP proof check costs the server. GET /auth/me and
// POST /auth/refresh on `rotor serve` (pinned to one core), each with DPoP-bound sessions and with
// Bearer sessions, in the same server process, interleaved over rounds. The load generator is this
// process (Node's `http`, on the second core, as row 3): wrk cannot make a fresh proof per request.
// Every DPoP request carries a new proof (its own `jti`, signed ES256 by its session's key with
// jose) made by the client just before sending. That signing is client work: it is left out of the
// latencies, measured alone (`proofMs`), and it slows a closed loop down only if the client runs
// out of CPU, which `loadCpu` shows.
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { closedLoop, send } from './lib/load.js';
import { rotorEnv, startRotor } from './lib/processes.js';
import { median } from './lib/stats.js';
import { PASSWORD } from './lib/users.js';

/**
 * Rate limits off: each client chains one session's tokens many times a second, past the default
 * 30 refreshes a minute; request logs at the default `info`.
 */
const LIMITS_OFF = { ROTOR_RATE_LIMIT: 'off' };

/** The issuer the bench's Rotor runs with: proofs name it in `htu` (as a client behind a proxy). */
const ISSUER = rotorEnv('').ROTOR_ISSUER;

/** A client's DPoP key: ES256, one per session, as a real client keeps one per installation. */
async function dpopKey() {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  return {
    /** A fresh proof for `method` `path` (its own jti), with `ath` when an access token is given. */
    proof(method, path, accessToken) {
      const claims = {
        htm: method,
        htu: `${ISSUER}${path}`,
        iat: Math.floor(Date.now() / 1000),
        jti: randomUUID(),
      };
      if (accessToken !== undefined) {
        claims.ath = createHash('sha256').update(accessToken).digest('base64url');
      }
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .sign(privateKey);
    },
  };
}

async function post(url, path, body, headers = {}) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** `count` users signed in, bound to a key each when `dpop` (their session's `tokenType` checked). */
async function signIn(url, count, prefix, dpop) {
  const sessions = [];
  for (let i = 0; i < count; i += 1) {
    const email = `${prefix}-${i}@example.test`;
    await post(url, '/auth/register', { email, password: PASSWORD });
    const key = dpop ? await dpopKey() : undefined;
    const json = await post(
      url,
      '/auth/login',
      { email, password: PASSWORD },
      {
        'token-delivery': 'body',
        ...(key && { dpop: await key.proof('POST', '/auth/login') }),
      },
    );
    if (json.tokenType !== (dpop ? 'DPoP' : 'Bearer')) {
      throw new Error(`login: tokenType ${json.tokenType}`);
    }
    sessions.push({ key, accessToken: json.accessToken, refreshToken: json.refreshToken });
  }
  return sessions;
}

/** GET /auth/me for `sessions` in a closed loop; with a fresh proof per request for bound ones. */
function me(url, sessions, seconds) {
  return closedLoop(sessions, seconds, async (session, agent) => {
    let headers;
    let prepared = 0;
    if (session.key) {
      const t0 = performance.now();
      const proof = await session.key.proof('GET', '/auth/me', session.accessToken);
      prepared = performance.now() - t0;
      headers = { authorization: `DPoP ${session.accessToken}`, dpop: proof };
    } else {
      headers = { authorization: `Bearer ${session.accessToken}` };
    }
    const { status, json } = await send(agent, `${url}/auth/me`, { headers });
    if (status !== 200) throw new Error(`GET /auth/me: ${status} ${JSON.stringify(json)}`);
    return prepared;
  });
}

/** POST /auth/refresh, each session chaining its own tokens; a fresh proof per bound refresh. */
function refresh(url, sessions, seconds) {
  return closedLoop(sessions, seconds, async (session, agent) => {
    let headers = {};
    let prepared = 0;
    if (session.key) {
      const t0 = performance.now();
      headers = { dpop: await session.key.proof('POST', '/auth/refresh') };
      prepared = performance.now() - t0;
    }
    const { status, json } = await send(agent, `${url}/auth/refresh`, {
      method: 'POST',
      headers,
      body: { refreshToken: session.refreshToken },
    });
    if (status !== 200) throw new Error(`refresh: ${status} ${JSON.stringify(json)}`);
    if (json.tokenType !== (session.key ? 'DPoP' : 'Bearer')) {
      throw new Error(`refresh: tokenType ${json.tokenType}`);
    }
    session.refreshToken = json.refreshToken;
    return prepared;
  });
}

/**
 * What one proof costs the client: `count` proofs made one after another in this process (a fresh
 * jti each, `ath` included), after a warm-up; milliseconds per proof, i.e. CPU time of one core.
 */
export async function proofCost(count = 2000) {
  const key = await dpopKey();
  const token = 'x'.repeat(400);
  for (let i = 0; i < 200; i += 1) await key.proof('GET', '/auth/me', token);
  const t0 = performance.now();
  for (let i = 0; i < count; i += 1) await key.proof('GET', '/auth/me', token);
  return (performance.now() - t0) / count;
}

/**
 * Lines per database: GET /auth/me and refresh, Bearer and DPoP, at each client count; medians
 * over `rounds` rounds, each in a fresh server process (see row 2 on process states). `ratio` is
 * DPoP's per-second rate over Bearer's at the same route, database and client count.
 * @param {{ postgresUrl?: string, rounds?: number, seconds?: number, clients?: number[] }} options
 */
export async function benchDpop({ postgresUrl, rounds = 3, seconds = 5, clients = [1, 16] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rotor-bench-dpop-'));
  const databases = { SQLite: `sqlite:${join(dir, 'rotor.db')}` };
  if (postgresUrl) databases.PostgreSQL = postgresUrl;
  const most = Math.max(...clients);
  const rows = [];
  let running;
  try {
    for (const [database, databaseUrl] of Object.entries(databases)) {
      running = await startRotor(databaseUrl, LIMITS_OFF);
      // Access tokens live 15 minutes; the GET lines reuse the same ones in every round.
      const sets = {
        Bearer: {
          me: await signIn(running.url, most, `dpop-me-bearer-${database}`, false),
          refresh: await signIn(running.url, most, `dpop-refresh-bearer-${database}`, false),
        },
        DPoP: {
          me: await signIn(running.url, most, `dpop-me-dpop-${database}`, true),
          refresh: await signIn(running.url, most, `dpop-refresh-dpop-${database}`, true),
        },
      };
      await running.stop();
      running = undefined;
      const lines = [];
      for (const [route, run] of [
        ['GET /auth/me', me],
        ['refresh', refresh],
      ]) {
        for (const count of clients) {
          for (const scheme of ['Bearer', 'DPoP']) {
            const sessions = sets[scheme][route === 'refresh' ? 'refresh' : 'me'].slice(0, count);
            lines.push({ route, scheme, count, run, sessions, results: [] });
          }
        }
      }
      for (let round = 0; round < rounds; round += 1) {
        running = await startRotor(databaseUrl, LIMITS_OFF);
        // Warm-up of every path (JIT, caches, prepared statements) before any line is measured.
        for (const line of lines) await line.run(running.url, line.sessions.slice(0, 4), 0.5);
        for (const line of lines)
          line.results.push(await line.run(running.url, line.sessions, seconds));
        await running.stop();
        running = undefined;
      }
      for (const line of lines) {
        const of = (field) => median(line.results.map((r) => r[field]));
        rows.push({
          name: `${line.route}, ${line.scheme}, ${database}, ${line.count} client${line.count > 1 ? 's' : ''}`,
          route: line.route,
          scheme: line.scheme,
          database,
          clients: line.count,
          perSecond: of('perSecond'),
          p50: of('p50'),
          p99: of('p99'),
          loadCpu: of('loadCpu'),
        });
      }
    }
    for (const row of rows) {
      const bearer = rows.find(
        (r) =>
          r.scheme === 'Bearer' &&
          r.route === row.route &&
          r.database === row.database &&
          r.clients === row.clients,
      );
      row.ratio = row.perSecond / bearer.perSecond;
    }
    return { rows, proofMs: await proofCost() };
  } finally {
    await running?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
