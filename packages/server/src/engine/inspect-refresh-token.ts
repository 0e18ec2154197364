import { isSessionLive } from '../sessions/session-state.js';
import type { SessionRow, UserRow } from '../store/store.js';
import { hashRefreshToken, isRefreshTokenShape } from '../tokens/refresh-token.js';
import type { EngineContext } from './context.js';

/** An active refresh token's session and user. */
export interface RefreshTokenInfo {
  session: SessionRow;
  user: UserRow;
  /** When the token expires unless used: milliseconds since the epoch. */
  expiresAt: number;
}

/**
 * Resolves a refresh token to its session and user without changing anything (token
 * introspection, RFC 7662): null unless the token is the live tip of a live session (a rotated,
 * expired or unknown token, a revoked or expired session, a deleted account). Never throws for a
 * bad token: introspection answers `active: false`.
 */
export async function inspectRefreshToken(
  ctx: Pick<EngineContext, 'store' | 'clock'>,
  refreshToken: string,
): Promise<RefreshTokenInfo | null> {
  if (!isRefreshTokenShape(refreshToken)) return null;
  const token = await ctx.store.findTokenByHash(hashRefreshToken(refreshToken));
  const session = token && (await ctx.store.findSession(token.session_id));
  const now = ctx.clock.now();
  if (!token || !session || token.rotated_at !== null || token.expires_at <= now) return null;
  if (!isSessionLive(session, now)) return null;
  const user = await ctx.store.findUserById(session.user_id);
  return user ? { session, user, expiresAt: token.expires_at } : null;
}
