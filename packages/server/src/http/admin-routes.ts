import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RotorError } from '../errors.js';
import type { Rotor } from '../rotor.js';
import { clientInfoOf } from './client-info.js';
import { presentUser } from './presenters.js';
import { BODIES } from './response-schemas.js';
import type { RouteAnswers } from './route-answers.js';
import { sameSecret } from './same-secret.js';

const loginTicketBody = {
  type: 'object',
  required: ['userId'],
  additionalProperties: false,
  properties: {
    userId: { type: 'string', minLength: 1, maxLength: 200 },
    deviceName: { type: ['string', 'null'], maxLength: 200 },
  },
} as const;

const userBody = {
  type: 'object',
  required: ['email'],
  additionalProperties: false,
  properties: {
    email: { type: 'string', maxLength: 1024 },
    name: { type: ['string', 'null'], maxLength: 200 },
  },
} as const;

/** The refusals of {@link adminAuthorized}, on every admin route. */
const ADMIN_TOKEN_ERRORS = ['missing_token', 'invalid_token', 'unavailable'] as const;

/**
 * The admin API (issue 16), for the app's backend, never a browser: login tickets for the app's
 * own sign-in, and users of an external sign-in. Registered only with `ROTOR_ADMIN_TOKEN` set;
 * every request carries it as a bearer token, compared in constant time.
 */
export async function adminRoutes(
  app: FastifyInstance,
  { rotor, token }: { rotor: Rotor; token: string },
): Promise<void> {
  const security: Record<string, string[]>[] = [{ adminToken: [] }];
  const admin = (answers: RouteAnswers) => ({
    preHandler: adminAuthorized(token),
    schema: { security },
    config: { answers: { ...answers, errors: [...ADMIN_TOKEN_ERRORS, ...(answers.errors ?? [])] } },
  });

  app.post<{ Body: { userId: string; deviceName?: string | null } }>(
    '/admin/login-tickets',
    {
      ...admin({
        success: { 201: BODIES.loginTicket },
        errors: ['invalid_request', 'not_found'],
      }),
      schema: { security, body: loginTicketBody },
    },
    async (request, reply) => {
      const issued = await rotor.issueLoginTicket(request.body, clientInfoOf(request));
      return reply.code(201).send(issued);
    },
  );

  app.post<{ Body: { email: string; name?: string | null } }>(
    '/admin/users',
    {
      ...admin({
        success: { 201: BODIES.registered },
        errors: ['invalid_request', 'forbidden', 'email_taken'],
      }),
      schema: { security, body: userBody },
    },
    async (request, reply) => {
      const user = await rotor.createUser(request.body, clientInfoOf(request));
      return reply.code(201).send({ user: presentUser(user) });
    },
  );
}

/**
 * The admin routes' preHandler: `Authorization: Bearer <ROTOR_ADMIN_TOKEN>`, compared in
 * constant time (`sameSecret`: SHA-256 first, so the lengths match). `missing_token` without
 * one, `invalid_token` for another; both 401 with a `WWW-Authenticate: Bearer` challenge.
 */
function adminAuthorized(token: string) {
  return async (request: FastifyRequest): Promise<void> => {
    const given = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
    if (given === undefined) {
      throw new RotorError(
        'missing_token',
        'The admin API needs ROTOR_ADMIN_TOKEN as a bearer token.',
      );
    }
    if (!sameSecret(given, token)) {
      throw new RotorError('invalid_token', 'That is not the admin token.');
    }
  };
}
