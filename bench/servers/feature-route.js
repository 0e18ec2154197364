// A trivial Fastify route with some of the per-request features Rotor's server has, set up as
// Rotor sets them up, chosen by FEATURES (comma-separated): what each one costs, in isolation.
import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifyCors from '@fastify/cors';
import Fastify from 'fastify';
import { Histogram, Registry } from 'prom-client';

const features = new Set((process.env.FEATURES ?? '').split(',').filter(Boolean));
const ORIGINS = ['http://localhost:3000'];
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
};

const app = Fastify({
  // Pino at warn: nothing is written, as in the benchmarks of Rotor.
  logger: features.has('logger') ? { level: 'warn' } : false,
  ...(features.has('request-id') && { genReqId: () => randomUUID(), requestIdHeader: false }),
});
if (features.has('cookie')) await app.register(fastifyCookie);
if (features.has('cors-plugin')) {
  await app.register(fastifyCors, {
    origin: ORIGINS,
    credentials: true,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['Content-Type', 'Authorization', 'Token-Delivery'],
    exposedHeaders: ['WWW-Authenticate', 'Retry-After', 'X-Request-Id'],
    maxAge: 600,
    strictPreflight: false,
  });
}
if (features.has('headers')) {
  // Rotor's one onRequest hook, without its CSRF and CORS parts: the security headers, the
  // request id header, and (as Rotor's own CORS does for a request without Origin) Vary.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('x-request-id', request.id);
    reply.header('vary', 'Origin');
    done();
  });
}
if (features.has('metrics')) {
  const duration = new Histogram({
    name: 'rotor_http_request_duration_seconds',
    help: 'HTTP request durations by method, route template and status.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [new Registry()],
  });
  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      { method: request.method, route: request.routeOptions.url, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}
app.get('/healthz', async () => ({ status: 'ok' }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
