import { DPOP_ALGORITHMS } from '@rotor/verify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { OAuthClient } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { clientInfoOf } from './client-info.js';
import { proofKeyOf, proofKeyOrNothing } from './dpop.js';
import { OAUTH_DELIVERY } from './delivery-rule.js';
import { OAuthError, sendOAuthError, toOAuthError } from './oauth-errors.js';
import { ref } from './response-schemas.js';
import { type RouteAnswers, warnIfUndeclared } from './route-answers.js';
import type { Rotor } from '../rotor.js';
import { sameSecret } from './same-secret.js';
import { isRefreshTokenShape } from '../tokens/refresh-token.js';

type Form = Record<string, string>;

/**
 * OAuth 2.0 on Rotor's session engine (rotation, grace window, re-use detection all apply):
 * `POST /oauth/token` (password and refresh_token grants, RFC 6749 §4.3 and §6), `POST /oauth/revoke`
 * (RFC 7009), `POST /oauth/introspect` (RFC 7662) and the RFC 8414 metadata. Bodies are
 * form-encoded; errors use RFC 6749 §5.2's `error` and `error_description` (plus API.md's `message`).
 */
export async function oauthRoutes(
  app: FastifyInstance,
  { rotor }: { rotor: Rotor },
): Promise<void> {
  const { config } = rotor;
  const clients = new Map(config.oauthClients.map((c) => [c.id, c]));
  const base = config.issuer.replace(/\/$/, '');

  // Only inside this plugin: the rest of Rotor keeps refusing form bodies with 415.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => {
      const form: Form = {};
      for (const [name, value] of new URLSearchParams(body as string)) {
        // RFC 6749 §3.1: parameters must not be repeated.
        if (name in form)
          return done(
            new OAuthError('invalid_request', `The parameter ${name} is repeated.`),
            undefined,
          );
        form[name] = value;
      }
      done(null, form);
    },
  );
  app.setErrorHandler((error, request, reply) => {
    const refusal = toOAuthError(error);
    warnIfUndeclared(request, refusal.code);
    return sendOAuthError(reply, refusal);
  });

  const metadata = {
    answers: { success: { 200: ref('AuthorizationServerMetadata') }, oauthErrors: [] },
  };
  app.get('/.well-known/oauth-authorization-server', { config: metadata }, async () => ({
    issuer: config.issuer,
    token_endpoint: `${base}/oauth/token`,
    revocation_endpoint: `${base}/oauth/revoke`,
    introspection_endpoint: `${base}/oauth/introspect`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    grant_types_supported: ['password', 'refresh_token'],
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
    revocation_endpoint_auth_methods_supported: [
      'none',
      'client_secret_basic',
      'client_secret_post',
    ],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    // RFC 9449 §5.1; absent when DPoP is off.
    ...(rotor.dpop.mode !== 'off' && { dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS] }),
  }));

  // Every grant's failure is `invalid_grant`; a spent login or refresh budget keeps its 429.
  const token = {
    answers: {
      success: { 200: ref('OAuthTokenResponse') },
      errors: ['rate_limited', 'unavailable'],
      oauthErrors: [
        'invalid_request',
        'invalid_client',
        'invalid_grant',
        'unsupported_grant_type',
        'invalid_dpop_proof',
        'use_dpop_nonce',
      ],
    },
  } satisfies { answers: RouteAnswers };
  app.post('/oauth/token', { config: token }, async (request, reply) => {
    const form = formOf(request);
    const client = authenticateClient(request, form, clients);
    let grant;
    try {
      // RFC 9449 §5: the proof's key binds the session at the password grant and must be the
      // session's at every refresh grant (judged by the rotation, as on /auth/refresh).
      const info = { ...clientInfoOf(request), dpopJkt: await proofKeyOf(rotor, request) };
      switch (form.grant_type) {
        case 'password':
          grant = await rotor.login({
            email: required(form, 'username'),
            password: required(form, 'password'),
            deviceName: `OAuth client ${client.id}`,
            delivery: OAUTH_DELIVERY,
            clientId: client.id,
            ...info,
          });
          break;
        case 'refresh_token':
          grant = await rotor.refresh({
            refreshToken: required(form, 'refresh_token'),
            clientId: client.id,
            ...info,
          });
          break;
        case undefined:
          throw new OAuthError('invalid_request', 'The grant_type parameter is missing.');
        default:
          throw new OAuthError('unsupported_grant_type');
      }
    } catch (error) {
      // RFC 9449 §5 and §8: the proof's own faults keep their codes, as OAuth errors.
      if (
        error instanceof RotorError &&
        (error.code === 'invalid_dpop_proof' || error.code === 'use_dpop_nonce')
      )
        throw new OAuthError(error.code, error.message);
      // Bad credentials and every dead refresh token (expired, revoked, re-used: the session is then
      // revoked as on /auth/refresh) are invalid_grant; so are the right credentials of an account
      // whose address is not proven yet (ROTOR_REQUIRE_VERIFIED_EMAIL, issue 17): the grant is
      // refused, its description says why.
      if (
        error instanceof RotorError &&
        (error.status === 401 || error.code === 'email_not_verified')
      )
        throw new OAuthError('invalid_grant', error.message);
      throw error;
    }
    const now = Math.floor(rotor.clock.now() / 1000);
    return reply
      .header('cache-control', 'no-store')
      .header('pragma', 'no-cache')
      .send({
        access_token: grant.accessToken,
        token_type: grant.tokenType,
        expires_in: Math.max(0, grant.accessExpiresAt - now),
        refresh_token: grant.refreshToken,
      });
  });

  // RFC 7009 §2.2: an unknown or dead token is revoked too (an empty 200).
  const revoke = {
    answers: {
      success: { 200: null },
      errors: ['unavailable'],
      oauthErrors: ['invalid_request', 'invalid_client'],
    },
  } satisfies { answers: RouteAnswers };
  app.post('/oauth/revoke', { config: revoke }, async (request, reply) => {
    const form = formOf(request);
    const client = authenticateClient(request, form, clients);
    const token = required(form, 'token');
    // RFC 7009 §2.2: an unknown or already invalid token is a success too. Revoking any token of a
    // session ends the session, but only for the client it was issued to. A rotated refresh token
    // too, as at /auth/logout (issue 15, item 6): §2.1 lets the server revoke the whole grant, and a
    // client that revokes the token it holds wants the session gone whichever token that is.
    // A session bound to a DPoP key ends only with a proof by that key (issue 18): whoever copied
    // one of its tokens cannot sign the owner out.
    const dpopJkt = await proofKeyOrNothing(rotor, request);
    if (isRefreshTokenShape(token)) {
      await rotor.logoutWithRefreshToken(token, { ...clientInfoOf(request), dpopJkt }, client.id);
    } else {
      const principal = await rotor.authenticate(token).catch(() => null);
      if (
        principal &&
        principal.session.client_id === client.id &&
        (principal.claims.cnf === undefined || principal.claims.cnf.jkt === dpopJkt)
      )
        await rotor.logoutSession(principal.session.id, clientInfoOf(request));
    }
    return reply.header('cache-control', 'no-store').send();
  });

  const introspect = {
    answers: {
      success: { 200: ref('Introspection') },
      errors: ['unavailable'],
      oauthErrors: ['invalid_request', 'invalid_client'],
    },
  } satisfies { answers: RouteAnswers };
  app.post('/oauth/introspect', { config: introspect }, async (request, reply) => {
    const form = formOf(request);
    const client = authenticateClient(request, form, clients);
    if (!client.secret)
      throw new OAuthError('invalid_client', 'Introspection is for confidential clients.');
    const token = required(form, 'token');
    reply.header('cache-control', 'no-store');
    const refresh = await rotor.inspectRefreshToken(token);
    if (refresh) {
      // A refresh token is only ever presented to Rotor by the client it was issued to, so no one
      // else has a reason to ask about it, and a yes would turn a token found elsewhere into one
      // known to be live. RFC 7662 §2.2: a token the caller "is not allowed to introspect" is
      // `active: false`; §4 leaves the policy to the server. `/auth` tokens belong to no client.
      if (refresh.session.client_id !== client.id) return { active: false };
      return {
        active: true,
        token_type: 'refresh_token',
        sub: refresh.user.id,
        sid: refresh.session.id,
        exp: Math.floor(refresh.expiresAt / 1000),
        iss: config.issuer,
        ...(refresh.session.client_id && { client_id: refresh.session.client_id }),
      };
    }
    // Access tokens are answered for any confidential client, whoever they were issued to: they are
    // bearer tokens for resource servers (`aud` is Rotor's audience, not a client), and a resource
    // server introspecting the tokens its callers present is RFC 7662 §1's own case, strict mode of
    // @rotor/verify among them, for `/auth` sessions as much as OAuth ones.
    const principal = await rotor.authenticate(token).catch(() => null);
    if (!principal) return { active: false };
    const { claims, session } = principal;
    return {
      active: true,
      // RFC 9449 §6.2: a bound token is a DPoP token, with its confirmation.
      token_type: claims.cnf ? 'DPoP' : 'Bearer',
      ...(claims.cnf && { cnf: claims.cnf }),
      sub: claims.sub,
      sid: claims.sid,
      jti: claims.jti,
      iat: claims.iat,
      exp: claims.exp,
      iss: claims.iss,
      aud: claims.aud,
      ...(session.client_id && { client_id: session.client_id }),
    };
  });
}

function formOf(request: FastifyRequest): Form {
  const type = request.headers['content-type'] ?? '';
  if (
    !type.toLowerCase().startsWith('application/x-www-form-urlencoded') ||
    typeof request.body !== 'object' ||
    !request.body
  ) {
    throw new OAuthError(
      'invalid_request',
      'Send the parameters as application/x-www-form-urlencoded.',
    );
  }
  return request.body as Form;
}

function required(form: Form, name: string): string {
  const value = form[name];
  if (!value) throw new OAuthError('invalid_request', `The ${name} parameter is missing.`);
  return value;
}

/**
 * Client authentication (RFC 6749 §2.3): HTTP Basic or `client_id`/`client_secret` in the body for
 * confidential clients; `client_id` alone for public ones. One method per request.
 */
function authenticateClient(
  request: FastifyRequest,
  form: Form,
  clients: Map<string, OAuthClient>,
): OAuthClient {
  const header = request.headers.authorization;
  let id: string | undefined;
  let secret: string | undefined;
  let basic = false;
  if (header && /^basic /i.test(header)) {
    basic = true;
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0 || form.client_secret !== undefined) {
      throw new OAuthError('invalid_client', 'Malformed client authentication.', {
        basic: true,
      });
    }
    try {
      // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
      id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
      secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
    } catch {
      throw new OAuthError('invalid_client', 'Malformed client authentication.', {
        basic: true,
      });
    }
    if (form.client_id !== undefined && form.client_id !== id) {
      throw new OAuthError('invalid_client', 'client_id does not match the authenticated client.', {
        basic: true,
      });
    }
  } else {
    id = form.client_id;
    secret = form.client_secret;
  }
  const client = id === undefined ? undefined : clients.get(id);
  if (!client) throw new OAuthError('invalid_client', 'Unknown client.', { basic });
  if (
    client.secret !== undefined
      ? secret === undefined || !sameSecret(secret, client.secret)
      : secret !== undefined
  ) {
    throw new OAuthError('invalid_client', undefined, { basic });
  }
  return client;
}
