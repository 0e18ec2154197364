import type { ClientInfo } from '../sessions/context.js';
import {
  endSession,
  endSessionByRefreshToken,
  revokeAllUserSessions,
  revokeUserSession,
} from '../sessions/end-sessions.js';
import type { EngineContext } from './context.js';

// Every revocation's audit event is written in the revocation's transaction (issue 15, item 5);
// only a revocation that happened is an event: a repeated one changed nothing.

/**
 * Logout with a refresh token: ends the session of any of its refresh tokens, rotated ones
 * included (RFC 7009 §2.1 lets the whole grant go); `clientId` is the OAuth client it must have
 * been issued to (`null`: a session of `/auth`). A session bound to a DPoP key ends only with
 * `client.dpopJkt` of that key (issue 18). Tells whether a session ended; never throws for a bad
 * token (logout is idempotent).
 */
export function logoutWithRefreshToken(
  ctx: Pick<EngineContext, 'sessions' | 'audit'>,
  refreshToken: string,
  client: Partial<ClientInfo> = {},
  clientId: string | null = null,
): Promise<boolean> {
  const { dpopJkt, ...info } = client;
  return endSessionByRefreshToken(
    ctx.sessions,
    refreshToken,
    clientId,
    (tx, session) =>
      ctx.audit.record(
        { type: 'logout', userId: session.user_id, sessionId: session.id, ...info },
        tx,
      ),
    dpopJkt,
  );
}

/** Logout with an access token: ends the caller's session. Tells whether it ended now. */
export function logoutSession(
  ctx: Pick<EngineContext, 'sessions' | 'audit'>,
  sessionId: string,
  client: Partial<ClientInfo> = {},
): Promise<boolean> {
  return endSession(ctx.sessions, sessionId, (tx, session) =>
    ctx.audit.record({ type: 'logout', userId: session.user_id, sessionId, ...client }, tx),
  );
}

/**
 * Ends every session of the user; returns how many were live. `reason` is what the sessions'
 * holders are told (`details.reason`): `logout_all` when the user asked, `admin` when an operator
 * did (the CLI).
 */
export function logoutAll(
  ctx: Pick<EngineContext, 'sessions' | 'audit'>,
  userId: string,
  client: Partial<ClientInfo> = {},
  reason: 'logout_all' | 'admin' = 'logout_all',
): Promise<number> {
  return revokeAllUserSessions(ctx.sessions, userId, reason, (tx) =>
    ctx.audit.record({ type: 'logout_all', userId, ...client }, tx),
  );
}

/**
 * Revokes one of the user's sessions (one device); false when it was revoked already.
 * Errors: `not_found` for an unknown id or another user's session.
 */
export function revokeSession(
  ctx: Pick<EngineContext, 'sessions' | 'audit'>,
  userId: string,
  sessionId: string,
  client: Partial<ClientInfo> = {},
): Promise<boolean> {
  return revokeUserSession(ctx.sessions, userId, sessionId, (tx) =>
    ctx.audit.record({ type: 'session_revoked', userId, sessionId, ...client }, tx),
  );
}
