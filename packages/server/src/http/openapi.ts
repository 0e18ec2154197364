import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * `GET /openapi.json`: an OpenAPI 3 document generated from the route schemas (bodies, parameters,
 * and the answers each route declares: route-answers.ts, response-schemas.ts) as the routes
 * register, and `GET /docs`, a page that renders it. Registered before the routes, which is when
 * `@fastify/swagger` collects them; routes marked `hide` (the demo page, /metrics) stay out.
 */
export async function installOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(fastifySwagger, {
    // A shared schema (response-schemas.ts) becomes the component named by its `$id`
    // (`#/components/schemas/User`), not `def-0`.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Rotor',
        version,
        description:
          'Access and refresh tokens done right: rotating refresh tokens, device sessions. ' +
          'Errors are `{error, message, details?}` (the `Error` schema) with the codes of ' +
          'docs/errors.md; each response lists the codes that route answers with that status. ' +
          'The OAuth routes refuse in RFC 6749 §5.2 shape (`OAuthError`). A method a path does ' +
          'not answer is `405 method_not_allowed`, an unknown path `404 not_found`.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          accessCookie: { type: 'apiKey', in: 'cookie', name: 'rotor_access' },
          // The admin API's (admin-routes.ts): ROTOR_ADMIN_TOKEN, for the app's backend only.
          adminToken: { type: 'http', scheme: 'bearer' },
        },
      },
    },
  });
  const listed = { schema: { hide: true }, config: { listed: true } };
  app.get('/openapi.json', listed, async () => app.swagger());
  // The page and its files in a context of their own, where the page itself is marked for `GET /`.
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      if (route.url === `${app.prefix}/docs` && route.method === 'GET') {
        route.config = { ...route.config, listed: true };
      }
    });
    await docs.register(fastifySwaggerUi, {
      routePrefix: '/docs',
      uiConfig: { url: `${app.prefix}/openapi.json` },
    });
  });
}
