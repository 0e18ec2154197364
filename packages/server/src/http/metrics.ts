import { BlockList } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RotorError } from '../errors.js';
import { addressFamily } from '../lib/ip-address.js';
import type { Rotor } from '../rotor.js';
import { sameSecret } from './same-secret.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The error code a refused request was answered with (set by the error handler). */
    rotorErrorCode?: string;
  }
}

const ACTIVE_SESSIONS_EVERY_MS = 60_000;

/**
 * The loopback networks (RFC 1122 §3.2.1.3: 127.0.0.0/8; RFC 4291 §2.5.3: ::1). Client addresses
 * arrive canonical (client-address.ts), so `::ffff:127.0.0.1` is already `127.0.0.1` here.
 */
function loopback(): BlockList {
  const list = new BlockList();
  list.addSubnet('127.0.0.0', 8, 'ipv4');
  list.addAddress('::1', 'ipv6');
  return list;
}

/** A histogram's child for one (method, route, status), as the request hook observes it. */
interface Observer {
  observe(value: number): void;
}

/**
 * The children of `histogram`, one per (method, route template, status), each made on first use
 * and kept: `histogram.observe(labels, value)` hashes and checks its labels on every call (a sort
 * and a string built per request), a child observes with none of that. The routes and statuses
 * are few (the route templates, not the URLs), so the maps stay small.
 */
function boundChildren(
  histogram: Histogram<'method' | 'route' | 'status'>,
): (method: string, route: string, status: number) => Observer {
  const byRoute = new Map<string, Map<string, Map<number, Observer>>>();
  return (method, route, status) => {
    let byMethod = byRoute.get(route);
    if (byMethod === undefined) byRoute.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    let child = byStatus.get(status);
    if (child === undefined) {
      byStatus.set(status, (child = histogram.labels({ method, route, status: String(status) })));
    }
    return child;
  };
}

/**
 * Prometheus metrics at `GET /metrics`, on a registry of this server's own (no global state, so
 * several servers in one process do not mix their counts): request durations by route, logins,
 * refreshes, re-use detections, active sessions, and Node's process metrics. Installed on the
 * instance of Rotor's routes (not as a plugin of its own), so its hook sees every one of them, and
 * only them when Rotor is mounted in an application.
 *
 * Who may read them: with `ROTOR_METRICS_TOKEN`, whoever sends it as a bearer token; without it,
 * loopback clients only (the client address of `ROTOR_TRUST_PROXY`, so behind a trusted proxy the
 * real client is judged), since the counts tell an outsider how logins fare and how busy Rotor is
 * (OWASP API Security Top 10 2023, API8 "Security Misconfiguration").
 */
export function installMetrics(app: FastifyInstance, rotor: Rotor): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rotor_' });
  const duration = new Histogram({
    name: 'rotor_http_request_duration_seconds',
    help: 'HTTP request durations by method, route template and status.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const logins = new Counter({
    name: 'rotor_logins_total',
    help: 'Logins by result: succeeded, failed (wrong email or password), rate_limited, error.',
    labelNames: ['result'],
    registers: [registry],
  });
  const refreshes = new Counter({
    name: 'rotor_refreshes_total',
    help: 'Refreshes by result: ok, or the error code that refused them.',
    labelNames: ['result'],
    registers: [registry],
  });
  const reuse = new Counter({
    name: 'rotor_reuse_detected_total',
    help: 'Rotated refresh tokens presented again: sessions revoked as stolen.',
    registers: [registry],
  });
  // A count of every session: about 100 ms with a million on SQLite, where it blocks the event
  // loop. Scrapes come every few seconds; the count is taken at most once a minute.
  let counted: { value: number; at: number } | undefined;
  new Gauge({
    name: 'rotor_active_sessions',
    help: 'Sessions neither revoked nor expired, counted in the database at most once a minute.',
    registers: [registry],
    async collect() {
      const now = rotor.clock.now();
      if (!counted || now - counted.at >= ACTIVE_SESSIONS_EVERY_MS) {
        counted = { value: await rotor.countActiveSessions(), at: now };
      }
      this.set(counted.value);
    },
  });

  // The account mails (issue 17): what the queue handed over or gave up, by kind, and what waits.
  // Read from the engine's counts at scrape time: the queue lives in the engine, the registry here.
  new Counter({
    name: 'rotor_mails_total',
    help: 'Account mails by kind and result: sent (accepted by the mailer) or failed (given up after every retry).',
    labelNames: ['kind', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, count] of Object.entries(rotor.mailCounts.sent)) {
        this.inc({ kind: key, result: 'sent' }, count);
      }
      for (const [key, count] of Object.entries(rotor.mailCounts.failed)) {
        this.inc({ kind: key, result: 'failed' }, count);
      }
    },
  });
  new Gauge({
    name: 'rotor_mails_pending',
    help: 'Account mails queued or being sent (in memory: a crash loses them; the log says which).',
    registers: [registry],
    collect() {
      this.set(rotor.mailCounts.pending);
    },
  });

  const login = `${app.prefix}/auth/login`;
  const refresh = `${app.prefix}/auth/refresh`;
  const durationOf = boundChildren(duration);
  // Callback-style: an async hook costs a promise on every request.
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    durationOf(request.method, route, status).observe(reply.elapsedTime / 1000);
    if (route === login && request.method === 'POST') {
      logins.inc({
        result:
          status === 200
            ? 'succeeded'
            : status === 401
              ? 'failed'
              : status === 429
                ? 'rate_limited'
                : 'error',
      });
    } else if (route === refresh && request.method === 'POST') {
      refreshes.inc({ result: status === 200 ? 'ok' : (request.rotorErrorCode ?? 'error') });
      if (request.rotorErrorCode === 'refresh_token_reused') reuse.inc();
    }
    done();
  });

  const token = rotor.config.metricsToken;
  const local = loopback();
  app.get(
    '/metrics',
    { schema: { hide: true }, config: { listed: true } },
    async (request, reply) => {
      if (token === undefined) {
        const address = request.clientAddress;
        if (address === null || !local.check(address, addressFamily(address))) {
          throw new RotorError(
            'forbidden',
            'GET /metrics answers only loopback clients; set ROTOR_METRICS_TOKEN to scrape it from elsewhere.',
          );
        }
      } else {
        // With ROTOR_METRICS_TOKEN set, only the scraper that has it reads the counts.
        const given = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
        if (given === undefined) {
          throw new RotorError(
            'missing_token',
            'GET /metrics needs ROTOR_METRICS_TOKEN as a bearer token.',
          );
        }
        if (!sameSecret(given, token)) {
          throw new RotorError('invalid_token', 'That is not the metrics token.');
        }
      }
      const body = await registry.metrics();
      return reply.type(registry.contentType).send(body);
    },
  );
}
