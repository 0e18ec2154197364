import { RotorError } from '../errors.js';
import { isId } from '../lib/ids.js';
import { hashRefreshToken, isRefreshTokenShape } from '../tokens/refresh-token.js';
import type { SessionRow, Store } from '../store/store.js';
import type { SessionContext } from './context.js';

/**
 * Runs in the transaction that ended a session, before it commits: the audit event of a revocation
 * commits with it or not at all, so a crash between them cannot leave a revocation without its
 * record (issue 15, item 5).
 */
export type OnSessionEnded = (tx: Store, session: SessionRow) => Promise<void>;

/**
 * Logout with a refresh token: revokes the session it belongs to, whichever of its tokens it is.
 * An unknown or dead token changes nothing (logout is idempotent). Tells whether a session ended.
 *
 * `clientId` is the OAuth client the session must have been issued to; `null` (the default, the
 * `/auth` logout) ends only sessions issued through `/auth`. An OAuth client's token is then as good
 * as unknown, as at `/auth/refresh`: RFC 7009 §2.1 revokes a token only for the client it was issued
 * to, after authenticating a confidential one, and `/oauth/revoke` is where that happens; a leaked
 * token that cannot refresh without its client's secret must not end the session without it either.
 */
export async function endSessionByRefreshToken(
  ctx: SessionContext,
  refreshToken: string,
  clientId: string | null = null,
  ended?: OnSessionEnded,
  /** The key thumbprint of the request's checked DPoP proof, if any (issue 18). */
  dpopJkt?: string,
): Promise<boolean> {
  if (!isRefreshTokenShape(refreshToken)) return false;
  const hash = hashRefreshToken(refreshToken);
  return ctx.store.transaction(async (tx) => {
    const token = await tx.findTokenByHash(hash);
    const session = token && (await tx.findSession(token.session_id));
    if (!session || session.client_id !== clientId) return false;
    // A bound session ends only by the key's holder: a thief who copied its refresh token cannot
    // sign the owner out with it either (issue 18).
    if (session.dpop_jkt !== null && session.dpop_jkt !== dpopJkt) return false;
    return revokeOne(ctx, tx, session, ended);
  });
}

/** Logout with an access token, or revocation of the caller's own current session. */
export function endSession(
  ctx: SessionContext,
  sessionId: string,
  ended?: OnSessionEnded,
): Promise<boolean> {
  return ctx.store.transaction(async (tx) => {
    const session = await tx.findSession(sessionId);
    return session ? revokeOne(ctx, tx, session, ended) : false;
  });
}

/** Revokes `session` as a logout unless it was already; its event in the same transaction. */
async function revokeOne(
  ctx: SessionContext,
  tx: Store,
  session: SessionRow,
  ended: OnSessionEnded | undefined,
  reason: 'logout' | 'revoked' = 'logout',
): Promise<boolean> {
  if (!(await tx.revokeSession(session.id, ctx.clock.now(), reason))) return false;
  await ended?.(tx, session);
  return true;
}

/**
 * Revokes one of the user's sessions (one device). Another user's or an unknown id is `not_found`,
 * so ids of other users' sessions cannot be probed. Revoking an already revoked one is a no-op;
 * tells whether this call revoked it.
 * An id that is not a UUID names no session: `not_found` without a query (lib/plain-text.ts).
 */
export async function revokeUserSession(
  ctx: SessionContext,
  userId: string,
  sessionId: string,
  ended?: OnSessionEnded,
): Promise<boolean> {
  if (!isId(sessionId)) throw new RotorError('not_found', 'No session with this id.');
  return ctx.store.transaction(async (tx) => {
    const session = await tx.findSession(sessionId);
    if (!session || session.user_id !== userId) {
      throw new RotorError('not_found', 'No session with this id.');
    }
    return revokeOne(ctx, tx, session, ended, 'revoked');
  });
}

/**
 * Revokes every session of a user (sign out everywhere); returns how many were live. The user's
 * session epoch moves first, in the same transaction, so a login whose password was verified
 * before this commits creates no session after it (issue 13, item 3; start-session.ts).
 */
export function revokeAllUserSessions(
  ctx: SessionContext,
  userId: string,
  reason: 'logout_all' | 'admin' = 'logout_all',
  /** Runs before the commit with how many sessions ended (the audit event commits with them). */
  ended?: (tx: Store, count: number) => Promise<void>,
): Promise<number> {
  return ctx.store.transaction(async (tx) => {
    await tx.bumpSessionEpoch(userId);
    const count = await tx.revokeUserSessions(userId, ctx.clock.now(), reason);
    await ended?.(tx, count);
    return count;
  });
}
