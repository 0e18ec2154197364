/**
 * `@rotor/server/fastify`: Rotor's routes inside a Fastify application of your own.
 * @example
 * await app.register(rotorPlugin, { config: loadConfig(), prefix: '/rotor' });
 * app.get('/notes', { preHandler: app.requireSession }, async (request) => notesOf(request.user!.id));
 */
export {
  rotorPlugin,
  type RotorPluginOptions,
  type RotorSource,
  type RotorRouteOptions,
} from './http/plugin.js';
export {
  principalFromHeaders,
  sessionFromHeaders,
  type SessionHeaders,
  type SessionPrincipal,
  type SessionUser,
} from './http/require-session.js';
