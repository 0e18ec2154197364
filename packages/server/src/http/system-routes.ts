import type { FastifyInstance } from 'fastify';
import { RotorError } from '../errors.js';
import type { Rotor } from '../rotor.js';
import { VERSION } from '../version.js';
import { ref } from './response-schemas.js';

/**
 * Health, readiness, the JWKS, and a short description at `/` when the demo page is absent, with
 * the `endpoints` collected from the registered routes (plugin.ts).
 */
export async function systemRoutes(
  app: FastifyInstance,
  { rotor, demo, endpoints }: { rotor: Rotor; demo: boolean; endpoints: () => readonly string[] },
): Promise<void> {
  app.get(
    '/.well-known/jwks.json',
    { config: { answers: { success: { 200: ref('Jwks') } } } },
    async (_request, reply) => {
      // Verifiers may cache the key set briefly; they refetch on an unknown kid.
      return reply.header('cache-control', 'public, max-age=300').send(rotor.keys.jwks());
    },
  );

  app.get('/healthz', { config: { answers: { success: { 200: ref('Status') } } } }, async () => ({
    status: 'ok',
  }));

  const ready = { answers: { success: { 200: ref('Status') }, errors: ['unavailable' as const] } };
  app.get('/readyz', { config: ready }, async () => {
    try {
      await rotor.ping();
    } catch (cause) {
      throw new RotorError('unavailable', 'The database cannot be reached.', { cause });
    }
    return { status: 'ok' };
  });

  // Without the demo page installed, `/` describes the service instead.
  if (!demo) {
    app.get('/', { schema: { hide: true } }, async () => ({
      name: 'rotor',
      version: VERSION,
      description:
        'Access and refresh tokens done right: rotating refresh tokens, device sessions.',
      issuer: rotor.config.issuer,
      endpoints: endpoints(),
    }));
  }
}
