import { STATUS_CODES } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ERROR_STATUS, type RotorErrorCode } from '../errors.js';
import { OAUTH_ERROR_STATUS, type OAuthErrorCode } from './oauth-errors.js';
import { ref } from './response-schemas.js';

/**
 * What a route answers, declared once beside the route (its `config.answers`): the success bodies
 * and the error codes its own work raises. {@link trackRouteAnswers} adds the codes every route
 * shares and turns the whole into the route's `schema.response`, which `/openapi.json` shows; the
 * error handlers check each error they send against the same declaration ({@link warnIfUndeclared}).
 */
export interface RouteAnswers {
  /** Success bodies by status; `null` for none (a 204, or an empty 200). */
  success: Readonly<Partial<Record<200 | 201 | 202 | 204, object | null>>>;
  /**
   * The codes the route's handler, its preHandlers and the engine operations they call raise
   * (`ACCESS_TOKEN_ERRORS` for a protected route); those of every route are added.
   */
  errors?: readonly RotorErrorCode[];
  /**
   * Set on the OAuth routes: their refusals in RFC 6749's shape (oauth-errors.ts). Every other
   * refusal under 500 there becomes `invalid_request`, except `rate_limited`.
   */
  oauthErrors?: readonly OAuthErrorCode[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route answers; every route `/openapi.json` shows declares it. */
    answers?: RouteAnswers;
    /** Every error code the route may answer, its own and the shared ones (set by onRoute). */
    answerableErrors?: ReadonlySet<string>;
  }
}

/** A protected route's refusals: no token, a bad or expired one, a session that ended. */
export const ACCESS_TOKEN_ERRORS = [
  'missing_token',
  'invalid_token',
  'token_expired',
  'session_expired',
  'session_revoked',
  'invalid_dpop_proof',
  'use_dpop_nonce',
  'unavailable',
] as const satisfies readonly RotorErrorCode[];

/**
 * Answered before any route runs, in Rotor's shape whatever the route: Node's parser cuts a slow
 * request or oversized headers (client-errors.ts), and a bug is a 500 anywhere.
 */
const EVERY_REQUEST: readonly RotorErrorCode[] = [
  'request_timeout',
  'headers_too_large',
  'internal_error',
];

/**
 * The checks of create-server.ts's onRequest hook, on every route: a Rotor cookie sent twice
 * (`invalid_request`), and a request carrying `rotor_access` from a foreign origin (`csrf_rejected`).
 */
const EVERY_ROUTE: readonly RotorErrorCode[] = ['invalid_request', 'csrf_rejected'];

/** Methods whose body Fastify parses (never GET's): too large, not JSON, or malformed JSON. */
const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const BODY_ERRORS: readonly RotorErrorCode[] = [
  'invalid_request',
  'payload_too_large',
  'unsupported_media_type',
];

/** Response headers some statuses carry, for the OpenAPI document. */
const HEADERS: Partial<Record<number, Record<string, object>>> = {
  401: {
    'WWW-Authenticate': {
      type: 'string',
      description:
        'On a missing or bad token: `Bearer`, or `Bearer error="invalid_token"` (RFC 6750).',
    },
  },
  429: { 'Retry-After': { type: 'integer', description: 'Seconds until an attempt fits.' } },
  503: { 'Retry-After': { type: 'integer', description: 'Seconds to wait before retrying.' } },
};

/**
 * Installs the onRoute hook that completes each route's declared answers with the shared codes
 * and writes them as the route's `schema.response`. Install it before any route is registered.
 */
export function trackRouteAnswers(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    // A route without a declaration (hidden ones; an embedder's own) keeps its schema as it is;
    // docs.test.ts checks that every route /openapi.json shows has one.
    const answers = route.config?.answers;
    if (answers === undefined) return;
    const methods = [route.method].flat().map((m) => m.toUpperCase());
    const hasBody = methods.some((m) => BODY_METHODS.has(m));
    const oauth = answers.oauthErrors !== undefined;
    const rotorCodes = new Set<RotorErrorCode>([...(answers.errors ?? []), ...EVERY_REQUEST]);
    const oauthCodes = new Set<OAuthErrorCode>(answers.oauthErrors ?? []);
    // The OAuth routes' error handler answers every other refusal under 500 but a spent budget as
    // `invalid_request` (oauth-errors.ts).
    for (const code of [...EVERY_ROUTE, ...(hasBody ? BODY_ERRORS : [])]) {
      if (oauth) oauthCodes.add('invalid_request');
      else rotorCodes.add(code);
    }
    if (oauth) {
      for (const code of rotorCodes) {
        if (ERROR_STATUS[code] < 500 && !['rate_limited', ...EVERY_REQUEST].includes(code)) {
          throw new Error(`${route.url}: ${code} is answered as an OAuth invalid_request there.`);
        }
      }
    }
    route.schema = { ...route.schema, response: responsesOf(answers, rotorCodes, oauthCodes) };
    route.config = { ...route.config, answerableErrors: new Set([...rotorCodes, ...oauthCodes]) };
  });
}

/** The `schema.response` of a route: success bodies, then each error status with its codes. */
function responsesOf(
  answers: RouteAnswers,
  rotorCodes: ReadonlySet<RotorErrorCode>,
  oauthCodes: ReadonlySet<OAuthErrorCode>,
): Record<string, object> {
  const response: Record<string, object> = {};
  for (const [status, body] of Object.entries(answers.success)) {
    const description = STATUS_CODES[Number(status)] ?? 'Success';
    response[status] = body === null ? { description, type: 'null' } : { description, ...body };
  }
  const groups = new Map<number, { shape: 'Error' | 'OAuthError'; codes: string[] }>();
  const add = (status: number, shape: 'Error' | 'OAuthError', code: string) => {
    const group = groups.get(status) ?? { shape, codes: [] };
    // One shape per status keeps each response one schema: no route mixes them today.
    if (group.shape !== shape) throw new Error(`Two error shapes answer status ${status}.`);
    group.codes.push(code);
    groups.set(status, group);
  };
  for (const code of rotorCodes) add(ERROR_STATUS[code], 'Error', code);
  for (const code of oauthCodes) add(OAUTH_ERROR_STATUS[code], 'OAuthError', code);
  for (const [status, { shape, codes }] of [...groups].sort(([a], [b]) => a - b)) {
    codes.sort();
    response[String(status)] = {
      description: `${STATUS_CODES[status]}: ${codes.map((code) => `\`${code}\``).join(', ')}.`,
      ...(HEADERS[status] && { headers: HEADERS[status] }),
      // The shared shape, with `error` narrowed to this route's codes: generated clients get a
      // union type, and a validator refuses an answer whose code the route did not declare.
      allOf: [
        ref(shape),
        { type: 'object', properties: { error: { type: 'string', enum: codes } } },
      ],
    };
  }
  return response;
}

/**
 * Logs an error code a route answered without declaring it: `/openapi.json` is then wrong about
 * that route, and its declaration (`config.answers`) needs the code. Routes without a declaration
 * (hidden ones, unknown paths) are not checked.
 */
export function warnIfUndeclared(request: FastifyRequest, code: string): void {
  const declared = request.routeOptions.config?.answerableErrors;
  if (declared !== undefined && !declared.has(code)) {
    request.log.warn({ code }, 'error code not among the route’s declared answers (/openapi.json)');
  }
}
