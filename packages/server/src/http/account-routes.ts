import type { FastifyInstance } from 'fastify';
import type { Rotor } from '../rotor.js';
import { principalOf, authenticate } from './authenticate.js';
import { clientInfoOf } from './client-info.js';
import { presentUser } from './presenters.js';
import { BODIES } from './response-schemas.js';
import { ACCESS_TOKEN_ERRORS } from './route-answers.js';

/** A link's token: 256 bits in base64url are 43 characters; anything longer names nothing. */
const token = { type: 'string', maxLength: 256 } as const;
const password = { type: 'string', maxLength: 4096 } as const;
const email = { type: 'string', maxLength: 1024 } as const;

const emailBody = {
  type: 'object',
  required: ['email'],
  properties: { email },
} as const;
const linkBody = {
  type: 'object',
  required: ['token'],
  properties: { token },
} as const;
const resetBody = {
  type: 'object',
  required: ['token', 'newPassword'],
  properties: { token, newPassword: password },
} as const;
const changeBody = {
  type: 'object',
  required: ['newEmail', 'password'],
  properties: { newEmail: email, password },
} as const;

/**
 * The answer to every request for an account mail, whatever the address (issue 17): no word, no
 * status and no time tells whether an account has it.
 */
const ACCEPTED = {
  message: 'If an account has this address, a mail is on its way. Links work for a limited time.',
} as const;

/**
 * The answer to an email change, whether or not another account has the new address: the same
 * for both, and in words that fit a change (the new address usually has no account).
 */
const CHANGE_ACCEPTED = {
  message:
    'A confirmation link is on its way to the new address (unless it cannot be used), and a notice to the current one. Links work for a limited time.',
} as const;

/** A link's redemption is answered with these besides its own (account-links.ts). */
const LINK_ERRORS = ['invalid_request', 'invalid_link', 'rate_limited', 'unavailable'] as const;

/**
 * The account mails' routes (issue 17; docs/api.md, "Account mails"): password reset, email
 * verification, email change and its undo. The link routes take the token in the JSON body (the
 * page read it from the link's fragment), so no token travels in a URL Rotor answers.
 */
export async function accountRoutes(
  app: FastifyInstance,
  { rotor }: { rotor: Rotor },
): Promise<void> {
  const client = clientInfoOf;
  const mailRequest = {
    schema: { body: emailBody },
    config: {
      answers: {
        success: { 202: BODIES.mailAccepted },
        errors: ['invalid_request', 'forbidden', 'rate_limited', 'unavailable'],
      },
    },
  } as const;

  app.post<{ Body: { email: string } }>(
    '/auth/password-reset',
    mailRequest,
    async (request, reply) => {
      await rotor.requestPasswordReset({ email: request.body.email, ...client(request) });
      return reply.code(202).send(ACCEPTED);
    },
  );

  app.post<{ Body: { token: string; newPassword: string } }>(
    '/auth/password-reset/confirm',
    {
      schema: { body: resetBody },
      config: { answers: { success: { 200: BODIES.accountRecovered }, errors: [...LINK_ERRORS] } },
    },
    async (request) => {
      const { user, sessionsEnded } = await rotor.confirmPasswordReset({
        ...request.body,
        ...client(request),
      });
      return { user: presentUser(user), sessionsEnded };
    },
  );

  app.post<{ Body: { email: string } }>(
    '/auth/verify-email/send',
    mailRequest,
    async (request, reply) => {
      await rotor.requestVerificationMail({ email: request.body.email, ...client(request) });
      return reply.code(202).send(ACCEPTED);
    },
  );

  app.post<{ Body: { token: string } }>(
    '/auth/verify-email',
    {
      schema: { body: linkBody },
      config: { answers: { success: { 200: BODIES.registered }, errors: [...LINK_ERRORS] } },
    },
    async (request) => {
      const user = await rotor.verifyEmail({ token: request.body.token, ...client(request) });
      return { user: presentUser(user) };
    },
  );

  const security: Record<string, string[]>[] = [{ bearer: [] }, { accessCookie: [] }];
  app.post<{ Body: { newEmail: string; password: string } }>(
    '/auth/email',
    {
      preHandler: authenticate(rotor),
      schema: { security, body: changeBody },
      config: {
        answers: {
          success: { 202: BODIES.mailAccepted },
          errors: [
            ...ACCESS_TOKEN_ERRORS,
            'invalid_request',
            'forbidden',
            'invalid_credentials',
            'rate_limited',
          ],
        },
      },
    },
    async (request, reply) => {
      await rotor.requestEmailChange({
        principal: principalOf(request),
        ...request.body,
        client: client(request),
      });
      return reply.code(202).send(CHANGE_ACCEPTED);
    },
  );

  app.post<{ Body: { token: string } }>(
    '/auth/email/confirm',
    {
      schema: { body: linkBody },
      config: {
        answers: { success: { 200: BODIES.registered }, errors: [...LINK_ERRORS, 'email_taken'] },
      },
    },
    async (request) => {
      const user = await rotor.confirmEmailChange({
        token: request.body.token,
        ...client(request),
      });
      return { user: presentUser(user) };
    },
  );

  app.post<{ Body: { token: string } }>(
    '/auth/email/undo',
    {
      schema: { body: linkBody },
      config: {
        answers: {
          success: { 200: BODIES.accountRecovered },
          errors: [...LINK_ERRORS, 'email_taken'],
        },
      },
    },
    async (request) => {
      const { user, sessionsEnded } = await rotor.undoEmailChange({
        token: request.body.token,
        ...client(request),
      });
      return { user: presentUser(user), sessionsEnded };
    },
  );
}
