import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * `GET /openapi.json`: an OpenAPI 3 document generated from the route schemas (bodies, parameters)
 * as the routes register, and `GET /docs`, a page that renders it. Registered before the routes,
 * which is when `@fastify/swagger` collects them; routes marked `hide` (the demo page, /metrics) stay
 * out.
 */
export async function installOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Rotor',
        version,
        description:
          'Access and refresh tokens done right: rotating refresh tokens, device sessions. ' +
          'Errors are `{error, message, details?}` with the codes of docs/errors.md.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          accessCookie: { type: 'apiKey', in: 'cookie', name: 'rotor_access' },
        },
      },
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    uiConfig: { url: '/openapi.json' },
  });
}
