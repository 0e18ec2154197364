// A tiny notes API: each user sees only their own notes. Rotor's access tokens are verified with
// @rotor/verify; nothing here knows about passwords or sessions.
import Fastify from 'fastify';
import { rotorVerify } from '@rotor/verify/fastify';

/**
 * @param {{ verifier: import('@rotor/verify').Verifier }} options
 * @returns {Promise<import('fastify').FastifyInstance>}
 */
export async function createNotesApi({ verifier }) {
  const app = Fastify();
  /** @type {Map<string, { id: number, text: string, createdAt: string }[]>} */
  const notes = new Map();
  let nextId = 1;

  await app.register(rotorVerify, { verifier });

  app.get('/notes', { preHandler: app.rotorAuthenticate }, async (request) => ({
    notes: notes.get(request.auth.sub) ?? [],
  }));

  app.post(
    '/notes',
    {
      preHandler: app.rotorAuthenticate,
      schema: {
        body: {
          type: 'object',
          required: ['text'],
          properties: { text: { type: 'string', minLength: 1, maxLength: 1000 } },
        },
      },
    },
    async (request, reply) => {
      const note = { id: nextId++, text: request.body.text, createdAt: new Date().toISOString() };
      notes.set(request.auth.sub, [...(notes.get(request.auth.sub) ?? []), note]);
      return reply.code(201).send({ note });
    },
  );
  return app;
}
