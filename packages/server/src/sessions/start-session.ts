import type { Delivery } from '../config/load-config.js';
import { newId } from '../lib/ids.js';
import type { SessionRow } from '../store/store.js';
import { generateRefreshToken, hashRefreshToken } from '../tokens/refresh-token.js';
import type { ClientInfo, SessionContext } from './context.js';

/** A session with the refresh token that goes with it, in plaintext for the client only. */
export interface IssuedSession {
  session: SessionRow;
  refreshToken: string;
  /** Milliseconds since the epoch. */
  refreshExpiresAt: number;
}

/**
 * Opens a new session for a device after a successful sign-in: the session row and its first
 * refresh token, in one transaction.
 */
export async function startSession(
  ctx: SessionContext,
  input: {
    userId: string;
    deviceName: string | null;
    delivery: Delivery;
    clientId?: string | null;
  } & ClientInfo,
): Promise<IssuedSession> {
  const now = ctx.clock.now();
  const maxExpiresAt = ctx.policy.sessionMaxAge > 0 ? now + ctx.policy.sessionMaxAge * 1000 : null;
  const refreshExpiresAt = Math.min(now + ctx.policy.refreshTtl * 1000, maxExpiresAt ?? Infinity);
  const refreshToken = generateRefreshToken();
  const session: SessionRow = {
    id: newId(),
    user_id: input.userId,
    device_name: input.deviceName,
    user_agent: input.userAgent,
    ip: input.ip,
    delivery: input.delivery === 'body' ? 'split' : input.delivery,
    created_at: now,
    last_used_at: now,
    idle_expires_at: refreshExpiresAt,
    max_expires_at: maxExpiresAt,
    revoked_at: null,
    revoked_reason: null,
    client_id: input.clientId ?? null,
  };
  await ctx.store.transaction(async (tx) => {
    await tx.insertSession(session);
    await tx.insertToken({
      session_id: session.id,
      type: 'refresh',
      token_hash: hashRefreshToken(refreshToken),
      created_at: now,
      expires_at: refreshExpiresAt,
      rotated_at: null,
      successor_hash: null,
    });
  });
  return { session, refreshToken, refreshExpiresAt };
}
