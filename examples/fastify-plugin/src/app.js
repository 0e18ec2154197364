// A Fastify app with Rotor registered as a plugin at /rotor: Rotor keeps its own users (sign-up and
// login at /rotor/auth/…), a browser gets its tokens as cookies, and the app's routes take the
// caller from app.requireSession.
import Fastify from 'fastify';
import { loadConfig } from '@rotor/server';
import { rotorPlugin } from '@rotor/server/fastify';

export const PREFIX = '/rotor';

/**
 * @param {{ config?: import('@rotor/server').RotorConfig, clock?: import('@rotor/server').Clock }}
 *   [options] `config` defaults to `loadConfig()` (ROTOR_* variables); `clock` lets tests move
 *   Rotor's time
 */
export async function createApp({ config = loadConfig(), clock } = {}) {
  const app = Fastify();
  await app.register(rotorPlugin, { config, prefix: PREFIX, ...(clock && { clock }) });

  /** @type {Map<string, { id: number, text: string }[]>} the app's own data, by Rotor user id */
  const notes = new Map();
  app.get('/api/notes', { preHandler: app.requireSession }, async (request) => ({
    email: request.user?.email,
    notes: notes.get(request.user?.id ?? '') ?? [],
  }));
  app.post(
    '/api/notes',
    {
      preHandler: app.requireSession,
      schema: {
        body: {
          type: 'object',
          required: ['text'],
          properties: { text: { type: 'string', minLength: 1, maxLength: 1000 } },
        },
      },
    },
    async (request, reply) => {
      const userId = request.user?.id ?? '';
      const mine = notes.get(userId) ?? [];
      const note = {
        id: mine.length + 1,
        text: /** @type {{ text: string }} */ (request.body).text,
      };
      notes.set(userId, [...mine, note]);
      return reply.code(201).send({ note });
    },
  );
  return app;
}
