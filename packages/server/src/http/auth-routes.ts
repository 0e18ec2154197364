import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { guessDeviceName } from '../lib/device-name.js';
import { pageQuery } from '../lib/paging.js';
import type { SessionRow } from '../store/store.js';
import type { Rotor } from '../rotor.js';
import { authenticate, authenticateRequest, principalOf } from './authenticate.js';
import { clientInfoOf } from './client-info.js';
import { proofKeyOf, proofKeyOrNothing } from './dpop.js';
import {
  ACCESS_COOKIE,
  clearAuthCookies,
  deviceCookieValues,
  REFRESH_COOKIE,
  sendTokens,
} from './delivery.js';
import {
  loginDelivery,
  refreshDelivery,
  requestedDelivery,
  type TokenSource,
} from './delivery-rule.js';
import { presentEvent, presentSession, presentUser } from './presenters.js';
import { BODIES, ref } from './response-schemas.js';
import { ACCESS_TOKEN_ERRORS, type RouteAnswers } from './route-answers.js';

const registerBody = {
  type: 'object',
  required: ['email', 'password'],
  properties: {
    email: { type: 'string', maxLength: 1024 },
    password: { type: 'string', maxLength: 4096 },
    name: { type: ['string', 'null'], maxLength: 200 },
  },
} as const;

/**
 * A password login (`email`, `password`), or the redemption of a login ticket (`ticket`, issued
 * by the app's backend at `POST /admin/login-tickets`; issue 16): either answers the same way.
 */
const loginBody = {
  type: 'object',
  anyOf: [{ required: ['email', 'password'] }, { required: ['ticket'] }],
  properties: {
    email: { type: 'string', maxLength: 1024 },
    password: { type: 'string', maxLength: 4096 },
    ticket: { type: 'string', maxLength: 1024 },
    deviceName: { type: ['string', 'null'], maxLength: 200 },
    /** From an earlier login's answer (body clients; browsers send the `rotor_device` cookie). */
    deviceToken: { type: 'string', maxLength: 1024 },
  },
} as const;

const passwordBody = {
  type: 'object',
  required: ['currentPassword', 'newPassword'],
  properties: {
    currentPassword: { type: 'string', maxLength: 4096 },
    newPassword: { type: 'string', maxLength: 4096 },
  },
} as const;

/** Refresh and logout take the refresh token from the body or the cookie; the body is optional. */
const refreshBody = {
  anyOf: [
    { type: 'null' },
    {
      type: 'object',
      properties: { refreshToken: { type: 'string', maxLength: 1024 } },
    },
  ],
} as const;

/**
 * `?limit=` and `?cursor=` of the paged lists, for the OpenAPI document. The values are checked by
 * `pageQuery` (lib/paging.ts) instead, with `attachValidation` on the route, so a bad one is
 * answered with `details.field` naming it, like every other field error.
 */
const pageQuerystring = {
  type: 'object',
  properties: {
    limit: { type: 'string', description: 'Items per page: 1 to 100, default 50.' },
    cursor: {
      type: 'string',
      description: 'The nextCursor of the previous page (opaque); absent for the first page.',
    },
  },
} as const;

const sessionParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 200 } },
} as const;

interface RegisterBody {
  email: string;
  password: string;
  name?: string | null;
}
type LoginBody = PasswordLoginBody | TicketLoginBody;
interface TicketLoginBody {
  ticket: string;
  email?: undefined;
  password?: undefined;
  deviceName?: string | null;
  deviceToken?: string;
}
interface PasswordLoginBody {
  ticket?: undefined;
  email: string;
  password: string;
  deviceName?: string | null;
  deviceToken?: string;
}
type RefreshBody = { refreshToken?: string } | null | undefined;

/** Marks a route as cookie-authenticated, so the CSRF check runs on it (API.md, "CSRF"). */
export const CSRF_ROUTE = { csrf: true } as const;

/** The `/auth/*` endpoints of API.md. */
export async function authRoutes(app: FastifyInstance, { rotor }: { rotor: Rotor }): Promise<void> {
  const { config } = rotor;
  const nowSeconds = () => Math.floor(rotor.clock.now() / 1000);
  const client = clientInfoOf;
  // The OpenAPI document (openapi.ts) shows which routes need an access token, and how to send it.
  const security: Record<string, string[]>[] = [{ bearer: [] }, { accessCookie: [] }];
  const protectedRoute = { preHandler: authenticate(rotor), schema: { security } };
  /** A protected route's answers: its own, and the refusals of `authenticate`. */
  const signedIn = (answers: RouteAnswers): { answers: RouteAnswers } => ({
    answers: { ...answers, errors: [...ACCESS_TOKEN_ERRORS, ...(answers.errors ?? [])] },
  });
  // A bad `limit` or `cursor` is `invalid_request` (lib/paging.ts).
  const pagedRoute = (body: object) => ({
    ...protectedRoute,
    attachValidation: true,
    schema: { security, querystring: pageQuerystring },
    config: signedIn({ success: { 200: body }, errors: ['invalid_request'] }),
  });

  app.post<{ Body: RegisterBody }>(
    '/auth/register',
    {
      schema: { body: registerBody },
      // The policy and the plain-text rule refuse fields (accounts.ts); sign-ups count per address.
      config: {
        answers: {
          success: { 201: BODIES.registered },
          errors: ['invalid_request', 'forbidden', 'email_taken', 'rate_limited', 'unavailable'],
        },
      },
    },
    async (request, reply) => {
      const user = await rotor.register({ ...request.body, ...client(request) });
      return reply.code(201).send({ user: presentUser(user) });
    },
  );

  app.post<{ Body: LoginBody }>(
    '/auth/login',
    {
      schema: { body: loginBody },
      // `session_revoked`: every session of the account ended while the password was checked
      // (start-session.ts).
      config: {
        answers: {
          success: { 200: ref('TokenResponse') },
          errors: [
            'invalid_request',
            'invalid_credentials',
            'session_revoked',
            'invalid_dpop_proof',
            'use_dpop_nonce',
            'rate_limited',
            'unavailable',
          ],
        },
      },
    },
    async (request, reply) => {
      const delivery = loginDelivery(request);
      const info = { ...client(request), dpopJkt: await proofKeyOf(rotor, request) };
      const { body } = request;
      const deviceName = body.deviceName?.trim() || guessDeviceName(info.userAgent);
      if (body.ticket !== undefined && (body.email !== undefined || body.password !== undefined)) {
        throw new RotorError(
          'invalid_request',
          'Send a ticket or an email and password, not both.',
          {
            details: { field: 'ticket' },
          },
        );
      }
      const grant =
        body.ticket !== undefined
          ? await rotor.redeemLoginTicket({ ticket: body.ticket, deviceName, delivery, ...info })
          : await rotor.login({
              email: body.email,
              password: body.password,
              deviceName,
              deviceToken: body.deviceToken ?? deviceCookieValues(request.headers.cookie),
              delivery,
              ...info,
            });
      return sendTokens(reply, config, grant, delivery, nowSeconds(), {
        accessCookie: ACCESS_COOKIE in request.cookies,
      });
    },
  );

  app.post<{ Body: RefreshBody }>(
    '/auth/refresh',
    {
      schema: { body: refreshBody },
      // The refusals of the rotation (rotate-refresh-token.ts) and of the delivery rule
      // (`invalid_request`, delivery-rule.ts); the per-session and per-address refresh limits.
      config: {
        ...CSRF_ROUTE,
        answers: {
          success: { 200: ref('TokenResponse') },
          errors: [
            'invalid_request',
            'missing_token',
            'invalid_token',
            'session_expired',
            'session_revoked',
            'refresh_token_reused',
            'invalid_dpop_proof',
            'use_dpop_nonce',
            'csrf_rejected',
            'rate_limited',
            'unavailable',
          ],
        },
      },
    },
    async (request, reply) => {
      const explicit = requestedDelivery(request);
      const fromBody = request.body?.refreshToken;
      const source: TokenSource = fromBody !== undefined ? 'body' : 'cookie';
      const refreshToken = fromBody ?? request.cookies[REFRESH_COOKIE];
      if (!refreshToken)
        throw new RotorError('missing_token', 'This request needs a refresh token.');
      // Decided from the session's stored delivery inside the rotation's transaction, before it
      // writes: a refused delivery rotates nothing, and the answer uses what was decided there.
      const decided: { delivery?: Delivery } = {};
      const grant = await rotor.refresh({
        refreshToken,
        delivery: explicit,
        checkDelivery: (stored) => {
          decided.delivery = refreshDelivery(explicit, source, stored);
        },
        ...client(request),
        dpopJkt: await proofKeyOf(rotor, request),
      });
      // No default: guessing one could put a cookie's token in the body.
      if (decided.delivery === undefined) throw new Error('The refresh judged no delivery.');
      return sendTokens(reply, config, grant, decided.delivery, nowSeconds(), {
        accessCookie: ACCESS_COOKIE in request.cookies,
      });
    },
  );

  app.post<{ Body: RefreshBody }>(
    '/auth/logout',
    {
      schema: { body: refreshBody },
      // Idempotent: a missing or dead token ends nothing and still answers 204.
      config: {
        ...CSRF_ROUTE,
        answers: { success: { 204: null }, errors: ['csrf_rejected', 'unavailable'] },
      },
    },
    async (request, reply) => {
      const refreshToken = request.body?.refreshToken ?? request.cookies[REFRESH_COOKIE];
      if (refreshToken) {
        await rotor.logoutWithRefreshToken(refreshToken, {
          ...client(request),
          dpopJkt: await proofKeyOrNothing(rotor, request),
        });
      }
      // The access token's session ends too, whatever the refresh token named: unknown, malformed,
      // an OAuth client's, a session already over (expired sessions are still "ended" by a revoke),
      // or another session. A logout answers 204 either way and the caller takes that as signed
      // out, so no token it sent may stay live (OWASP Session Management Cheat Sheet, "Manual
      // Session Expiration": the session is invalidated on the server). A second revocation of the
      // same session is a no-op.
      const principal = await principalOrNull(rotor, request);
      if (principal) await rotor.logoutSession(principal.session.id, client(request));
      clearAuthCookies(reply, config);
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { currentPassword: string; newPassword: string } }>(
    '/auth/password',
    {
      ...protectedRoute,
      schema: { security, body: passwordBody },
      // A wrong current password counts like a failed login (accounts.ts, password-attempts.ts).
      config: signedIn({
        success: { 204: null },
        errors: ['invalid_request', 'invalid_credentials', 'rate_limited'],
      }),
    },
    async (request, reply) => {
      await rotor.changePassword({
        principal: principalOf(request),
        ...request.body,
        client: client(request),
      });
      return reply.code(204).send();
    },
  );

  const signedOut = { ...protectedRoute, config: signedIn({ success: { 204: null } }) };
  app.post('/auth/logout-all', signedOut, async (request, reply) => {
    await rotor.logoutAll(principalOf(request).user.id, client(request));
    clearAuthCookies(reply, config);
    return reply.code(204).send();
  });

  // The answer depends on the session and user rows only; while the session-state cache holds those
  // rows (the same objects), their JSON is reused instead of formatted again on every request.
  const meBodies = new WeakMap<SessionRow, string>();
  const me = { ...protectedRoute, config: signedIn({ success: { 200: BODIES.me } }) };
  app.get('/auth/me', me, async (request, reply) => {
    const { user, session } = principalOf(request);
    let body = meBodies.get(session);
    if (body === undefined) {
      body = JSON.stringify({
        user: presentUser(user),
        session: presentSession(session, session.id),
      });
      meBodies.set(session, body);
    }
    return reply.type('application/json; charset=utf-8').send(body);
  });

  app.get('/auth/events', pagedRoute(BODIES.eventsPage), async (request) => {
    const page = await rotor.listEvents(principalOf(request).user.id, pageQuery(request.query));
    return { events: page.items.map(presentEvent), nextCursor: page.nextCursor };
  });

  app.get('/auth/sessions', pagedRoute(BODIES.sessionsPage), async (request) => {
    const { user, session } = principalOf(request);
    const page = await rotor.listSessions(user.id, pageQuery(request.query));
    return {
      sessions: page.items.map((s) => presentSession(s, session.id)),
      nextCursor: page.nextCursor,
    };
  });

  app.delete<{ Params: { id: string } }>(
    '/auth/sessions/:id',
    {
      ...protectedRoute,
      schema: { security, params: sessionParams },
      // Another user's, an unknown or a malformed id is `not_found` (end-sessions.ts).
      config: signedIn({ success: { 204: null }, errors: ['invalid_request', 'not_found'] }),
    },
    async (request, reply) => {
      const { user, session } = principalOf(request);
      await rotor.revokeSession(user.id, request.params.id, client(request));
      if (request.params.id === session.id) clearAuthCookies(reply, config);
      return reply.code(204).send();
    },
  );
}

/** Logout is idempotent: a missing, dead or invalid access token simply ends nothing. */
async function principalOrNull(rotor: Rotor, request: FastifyRequest) {
  try {
    // As a protected route judges it: a bound token without its proof ends nothing (issue 18).
    return await authenticateRequest(rotor, request);
  } catch (error) {
    if (error instanceof RotorError && error.status === 401) return null;
    throw error;
  }
}
