import type { FastifyInstance } from 'fastify';

/**
 * The bodies Rotor answers, as shared JSON schemas: `app.addSchema` makes each a component of
 * `/openapi.json` under its `$id` (`#/components/schemas/User`), and routes refer to them as
 * `{ $ref: 'User#' }`. They describe what the presenters (presenters.ts, delivery.ts, the OAuth
 * routes) send, and a test validates real answers against them; `additionalProperties: false`
 * makes a field added to an answer but not here fail that test.
 */

const isoTime = { type: 'string', format: 'date-time' } as const;
const nullableText = { type: ['string', 'null'] } as const;

const User = {
  $id: 'User',
  description: 'A user; never the password hash.',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'email', 'name', 'emailVerified', 'createdAt'],
  properties: {
    id: { type: 'string' },
    email: { type: 'string' },
    name: nullableText,
    emailVerified: {
      type: 'boolean',
      description: 'The address was proven by a link mailed to it (issue 17).',
    },
    createdAt: isoTime,
  },
} as const;

const Session = {
  $id: 'Session',
  description:
    'A device session. `expiresAt` is when it ends if unused (the earlier of the idle expiry and ' +
    'the maximum lifetime); `current` is true for the session of the calling access token.',
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'deviceName',
    'userAgent',
    'ip',
    'createdAt',
    'lastUsedAt',
    'expiresAt',
    'dpopBound',
    'current',
  ],
  properties: {
    id: { type: 'string' },
    deviceName: nullableText,
    userAgent: nullableText,
    ip: nullableText,
    createdAt: isoTime,
    lastUsedAt: isoTime,
    expiresAt: isoTime,
    dpopBound: {
      type: 'boolean',
      description: 'Bound to a DPoP key at sign-in (RFC 9449): its tokens need proofs by that key.',
    },
    current: { type: 'boolean' },
  },
} as const;

const SecurityEvent = {
  $id: 'SecurityEvent',
  description: 'One security event of the caller (the audit log; docs/security.md).',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'at', 'ip', 'userAgent', 'sessionId'],
  properties: {
    type: { type: 'string', description: 'login_succeeded, login_failed, refresh, logout, …' },
    at: isoTime,
    ip: nullableText,
    userAgent: nullableText,
    sessionId: nullableText,
  },
} as const;

const nextCursor = {
  type: ['string', 'null'],
  description: 'Fetches the next page (`?cursor=`); null on the last page.',
} as const;

/** The fields of every token response; which tokens travel in the body depends on the delivery. */
const tokenFields = {
  tokenType: { type: 'string', enum: ['Bearer', 'DPoP'] },
  accessToken: { type: 'string', description: 'The access token (a JWT).' },
  expiresIn: {
    type: 'integer',
    minimum: 0,
    description: 'Seconds until the access token expires.',
  },
  refreshToken: { type: 'string', description: 'The refresh token (opaque); rotates on use.' },
  refreshExpiresIn: {
    type: 'integer',
    minimum: 0,
    description: 'Seconds until the refresh token expires if unused.',
  },
  sessionId: { type: 'string' },
  user: { $ref: 'User#' },
  deviceToken: {
    type: 'string',
    description:
      'Login only: sent back with the next login, it earns this device its own login budget.',
  },
} as const;
const always = ['tokenType', 'expiresIn', 'refreshExpiresIn', 'sessionId', 'user'] as const;

const TokenResponseBody = {
  $id: 'TokenResponseBody',
  description: '`Token-Delivery: body`: both tokens in the body (mobile, desktop, CLI, servers).',
  type: 'object',
  additionalProperties: false,
  required: [...always, 'accessToken', 'refreshToken'],
  properties: tokenFields,
} as const;

const TokenResponseSplit = {
  $id: 'TokenResponseSplit',
  description:
    '`Token-Delivery: split` (the default): the access token in the body, the refresh token in ' +
    'the HttpOnly `rotor_refresh` cookie.',
  type: 'object',
  additionalProperties: false,
  required: [...always, 'accessToken'],
  properties: (({ refreshToken: _r, deviceToken: _d, ...rest }) => rest)(tokenFields),
} as const;

const TokenResponseCookies = {
  $id: 'TokenResponseCookies',
  description:
    '`Token-Delivery: cookies`: no token in the body; the access token in the HttpOnly ' +
    '`rotor_access` cookie, the refresh token in `rotor_refresh`.',
  type: 'object',
  additionalProperties: false,
  required: [...always],
  properties: (({ accessToken: _a, refreshToken: _r, deviceToken: _d, ...rest }) => rest)(
    tokenFields,
  ),
} as const;

const TokenResponse = {
  $id: 'TokenResponse',
  description: 'The answer of a login or refresh, shaped by the delivery (`Token-Delivery`).',
  oneOf: [
    { $ref: 'TokenResponseBody#' },
    { $ref: 'TokenResponseSplit#' },
    { $ref: 'TokenResponseCookies#' },
  ],
} as const;

const ErrorBody = {
  $id: 'Error',
  description: 'Every error of Rotor (docs/errors.md); match on `error`, never on `message`.',
  type: 'object',
  additionalProperties: false,
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'A stable code of docs/errors.md.' },
    message: { type: 'string', description: 'For humans.' },
    details: {
      type: 'object',
      description: 'What was wrong: `field`, `header` or `cookie`, named as the client sent it.',
    },
  },
} as const;

const OAuthErrorBody = {
  $id: 'OAuthError',
  description: 'A refusal of an OAuth route (RFC 6749 §5.2), with Rotor’s `message` beside it.',
  type: 'object',
  additionalProperties: false,
  required: ['error', 'error_description', 'message'],
  properties: {
    error: { type: 'string', description: 'An RFC 6749 §5.2 code.' },
    error_description: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

const OAuthTokenResponse = {
  $id: 'OAuthTokenResponse',
  description: 'RFC 6749 §5.1.',
  type: 'object',
  additionalProperties: false,
  required: ['access_token', 'token_type', 'expires_in', 'refresh_token'],
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer', 'DPoP'] },
    expires_in: { type: 'integer', minimum: 0 },
    refresh_token: { type: 'string' },
  },
} as const;

const Introspection = {
  $id: 'Introspection',
  description:
    'RFC 7662 §2.2: `{active: false}` for a token that is not live or not the caller’s to ' +
    'introspect; else its claims.',
  type: 'object',
  additionalProperties: false,
  required: ['active'],
  properties: {
    active: { type: 'boolean' },
    token_type: { type: 'string', enum: ['Bearer', 'DPoP', 'refresh_token'] },
    sub: { type: 'string' },
    sid: { type: 'string' },
    jti: { type: 'string' },
    iat: { type: 'integer' },
    exp: { type: 'integer' },
    iss: { type: 'string' },
    aud: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    client_id: { type: 'string' },
    cnf: {
      type: 'object',
      description: 'RFC 9449 §6.2: the key a DPoP token is bound to.',
      additionalProperties: false,
      required: ['jkt'],
      properties: { jkt: { type: 'string' } },
    },
  },
} as const;

const Jwks = {
  $id: 'Jwks',
  description: 'The public keys that verify access tokens (RFC 7517).',
  type: 'object',
  additionalProperties: false,
  required: ['keys'],
  properties: {
    keys: {
      type: 'array',
      items: {
        type: 'object',
        required: ['kty', 'kid', 'alg', 'use'],
        properties: {
          kty: { type: 'string' },
          crv: { type: 'string' },
          x: { type: 'string' },
          kid: { type: 'string' },
          alg: { type: 'string' },
          use: { type: 'string', enum: ['sig'] },
        },
      },
    },
  },
} as const;

const AuthorizationServerMetadata = {
  $id: 'AuthorizationServerMetadata',
  description: 'RFC 8414 §2.',
  type: 'object',
  additionalProperties: false,
  required: [
    'issuer',
    'token_endpoint',
    'revocation_endpoint',
    'introspection_endpoint',
    'jwks_uri',
    'grant_types_supported',
    'response_types_supported',
    'token_endpoint_auth_methods_supported',
    'revocation_endpoint_auth_methods_supported',
    'introspection_endpoint_auth_methods_supported',
  ],
  properties: {
    issuer: { type: 'string' },
    token_endpoint: { type: 'string' },
    revocation_endpoint: { type: 'string' },
    introspection_endpoint: { type: 'string' },
    jwks_uri: { type: 'string' },
    grant_types_supported: { type: 'array', items: { type: 'string' } },
    dpop_signing_alg_values_supported: { type: 'array', items: { type: 'string' } },
    response_types_supported: { type: 'array', items: { type: 'string' } },
    token_endpoint_auth_methods_supported: { type: 'array', items: { type: 'string' } },
    revocation_endpoint_auth_methods_supported: { type: 'array', items: { type: 'string' } },
    introspection_endpoint_auth_methods_supported: { type: 'array', items: { type: 'string' } },
  },
} as const;

const Status = {
  $id: 'Status',
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: { status: { type: 'string', enum: ['ok'] } },
} as const;

const SCHEMAS = [
  User,
  Session,
  SecurityEvent,
  TokenResponseBody,
  TokenResponseSplit,
  TokenResponseCookies,
  TokenResponse,
  ErrorBody,
  OAuthErrorBody,
  OAuthTokenResponse,
  Introspection,
  Jwks,
  AuthorizationServerMetadata,
  Status,
];

/** A shared schema's name, checked by the compiler: a typo in a route's `$ref` does not build. */
export type SchemaName = (typeof SCHEMAS)[number]['$id'];

/** `{ $ref: 'User#' }`: a reference to a shared schema, as routes and other schemas write it. */
export function ref(name: SchemaName): { $ref: string } {
  return { $ref: `${name}#` };
}

/** Route bodies that wrap shared schemas: `{user}`, `{user, session}`, the pages. */
export const BODIES = {
  registered: object({ user: ref('User') }),
  me: object({ user: ref('User'), session: ref('Session') }),
  sessionsPage: object({ sessions: { type: 'array', items: ref('Session') }, nextCursor }),
  eventsPage: object({ events: { type: 'array', items: ref('SecurityEvent') }, nextCursor }),
  /** The answer to a request for an account mail: the same whatever the address (issue 17). */
  mailAccepted: object({
    message: {
      type: 'string',
      description: 'For humans; the same whether or not an account has the address.',
    },
  }),
  /** A reset or an undo: the account, and how many of its sessions ended. */
  accountRecovered: object({
    user: ref('User'),
    sessionsEnded: { type: 'integer', description: 'Sessions ended: every one of the user.' },
  }),
  /** `POST /admin/login-tickets` (issue 16): the ticket, once, and its lifetime in seconds. */
  loginTicket: object({
    ticket: { type: 'string', description: 'Single use; send it as `POST /auth/login {ticket}`.' },
    expiresIn: { type: 'integer', description: 'Seconds the ticket can be redeemed (60).' },
  }),
} as const;

function object(properties: Record<string, object>) {
  return {
    type: 'object',
    additionalProperties: false,
    required: Object.keys(properties),
    properties,
  } as const;
}

/** Registers every shared schema; before the routes that refer to them. */
export function addResponseSchemas(app: FastifyInstance): void {
  for (const schema of SCHEMAS) app.addSchema(schema);
}
