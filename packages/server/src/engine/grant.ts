import { sessionEndsAt } from '../sessions/session-state.js';
import type { IssuedSession } from '../sessions/start-session.js';
import type { SessionRow, UserRow } from '../store/store.js';
import type { EngineContext } from './context.js';
import { customClaims } from './custom-claims.js';

/** What a successful login or refresh hands out; the HTTP layer shapes it per delivery. */
export interface TokenGrant {
  user: UserRow;
  session: SessionRow;
  accessToken: string;
  /** Seconds since the epoch (the access token's `exp`). */
  accessExpiresAt: number;
  refreshToken: string;
  /** Seconds since the epoch (`IssuedSession.refreshExpiresAtMs`, rounded down). */
  refreshExpiresAt: number;
  /** False when a racer inside the grace window got the successor another request created. */
  rotated: boolean;
  /** RFC 9449 §5: `DPoP` when the session is bound to a key (the tokens need proofs), else `Bearer`. */
  tokenType: 'Bearer' | 'DPoP';
  /** After a login: a new device token for this client (OWASP device cookies; device-token.ts). */
  deviceToken?: string;
}

/**
 * The grant of an issued session: signs its access token, which never outlives its session
 * (DESIGN.md, 4), with the app's claims, and puts the times in seconds. `rotated` defaults to true (a login's new session).
 */
export async function grantTokens(
  ctx: Pick<EngineContext, 'clock' | 'policy' | 'accessTokens' | 'claims'>,
  user: UserRow,
  issued: IssuedSession & { rotated?: boolean },
  /**
   * The app's claims when they were already evaluated inside the transaction that issued the
   * session (a hook that throws there rolls it back: no session or rotation nobody received).
   */
  evaluated?: { claims: Record<string, unknown> | undefined },
): Promise<TokenGrant> {
  const nowSeconds = Math.floor(ctx.clock.now() / 1000);
  const accessExpiresAt = Math.min(
    nowSeconds + ctx.policy.accessTtlSeconds,
    Math.floor(sessionEndsAt(issued.session) / 1000),
  );
  const accessToken = await ctx.accessTokens.sign({
    sub: user.id,
    sid: issued.session.id,
    exp: accessExpiresAt,
    emailVerified: user.email_verified_at !== null,
    // Every token of a bound session is bound to its key (RFC 9449 §6), refreshes included.
    dpopJkt: issued.session.dpop_jkt,
    // The app's claims, evaluated again for every token (a change of roles reaches the next one).
    claims: evaluated
      ? evaluated.claims
      : await customClaims(ctx.claims, { user, session: issued.session }),
  });
  return {
    user,
    session: issued.session,
    accessToken,
    accessExpiresAt,
    refreshToken: issued.refreshToken,
    refreshExpiresAt: Math.floor(issued.refreshExpiresAtMs / 1000),
    rotated: issued.rotated ?? true,
    tokenType: issued.session.dpop_jkt ? 'DPoP' : 'Bearer',
  };
}
