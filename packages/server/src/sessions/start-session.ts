import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { newId } from '../lib/ids.js';
import type { SessionRow, Store, UserRow } from '../store/store.js';
import { generateRefreshToken, hashRefreshToken } from '../tokens/refresh-token.js';
import type { ClientInfo, SessionContext } from './context.js';

/** A session with the refresh token that goes with it, in plaintext for the client only. */
export interface IssuedSession {
  session: SessionRow;
  refreshToken: string;
  /** When the refresh token expires unless used: milliseconds since the epoch. */
  refreshExpiresAtMs: number;
}

/**
 * Opens a new session for a device after a successful sign-in: the session row and its first
 * refresh token, in one transaction that first locks the user's row and checks that the
 * credentials verified are still current (issue 13, item 3). A password change, a sign-out
 * everywhere or a deletion of the account that committed while the password was being verified
 * leaves this sign-in without a session: `invalid_credentials` when the password changed or the
 * account is gone, `session_revoked` when every session was ended. Past `maxSessions` live
 * sessions, the least recently used ones end in the same transaction (`evicted` tells which).
 */
export async function startSession(
  ctx: SessionContext,
  input: {
    /** The user as read before the password was verified: its hash and session epoch. */
    user: UserRow;
    deviceName: string | null;
    delivery: Delivery;
    clientId?: string | null;
    /** Runs in the transaction once the session exists (the audit events commit with it). */
    started?: (tx: Store, session: SessionRow, evicted: string[]) => Promise<void>;
  } & ClientInfo,
): Promise<IssuedSession> {
  const now = ctx.clock.now();
  const maxExpiresAt = ctx.policy.sessionMaxAge > 0 ? now + ctx.policy.sessionMaxAge * 1000 : null;
  const refreshExpiresAt = Math.min(now + ctx.policy.refreshTtl * 1000, maxExpiresAt ?? Infinity);
  const refreshToken = generateRefreshToken();
  const refreshTokenHash = hashRefreshToken(refreshToken);
  const session: SessionRow = {
    id: newId(),
    user_id: input.user.id,
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
    // Bound at sign-in only (RFC 9449 §5): binding an unbound session later would let whoever
    // stole its token bind it to their own key and lock its owner out.
    dpop_jkt: input.dpopJkt ?? null,
  };
  await ctx.store.transaction(async (tx) => {
    // Held until commit: a password change or sign-out everywhere of this user waits for this
    // session to exist, then ends it; or it committed first, and this sees its new epoch.
    const current = await tx.lockUser(input.user.id);
    if (!current || current.password_hash !== input.user.password_hash) {
      throw new RotorError('invalid_credentials', 'The email or password is incorrect.');
    }
    if (current.session_epoch !== input.user.session_epoch) {
      throw new RotorError(
        'session_revoked',
        'Every session of this account was ended while signing in; sign in again.',
      );
    }
    const live = await tx.listLiveSessionIdsByUse(input.user.id, now);
    const evicted = live.slice(0, Math.max(0, live.length - ctx.policy.maxSessions + 1));
    for (const id of evicted) await tx.revokeSession(id, now, 'session_limit');
    await tx.insertSession(session);
    await tx.insertToken({
      session_id: session.id,
      type: 'refresh',
      token_hash: refreshTokenHash,
      created_at: now,
      expires_at: refreshExpiresAt,
      rotated_at: null,
      successor_hash: null,
    });
    await input.started?.(tx, session, evicted);
  });
  // Its first refresh can then be made in one statement (rotate-refresh-token.ts).
  ctx.issued?.remember(refreshTokenHash, session.id);
  return { session, refreshToken, refreshExpiresAtMs: refreshExpiresAt };
}
