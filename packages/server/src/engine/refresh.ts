import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import type { ClientInfo } from '../sessions/context.js';
import { rotateRefreshToken } from '../sessions/rotate-refresh-token.js';
import type { EngineContext } from './context.js';
import { customClaims } from './custom-claims.js';
import { grantTokens, type TokenGrant } from './grant.js';
import { limitAddress } from './limit-subject.js';

/** A refresh (RFC 6749 §6): the refresh token presented and where it comes from. */
export type RefreshInput = {
  refreshToken: string;
  delivery?: Delivery | undefined;
  /** The OAuth client the token's session was issued to; unset, a session of `/auth`. */
  clientId?: string;
  /** Judges the session's stored delivery before anything is written (see `rotateRefreshToken`). */
  checkDelivery?: (stored: string) => void;
} & ClientInfo;

/**
 * Exchanges a refresh token for a new grant: the refresh decision (`rotateRefreshToken`) with the
 * per-session limit admitted before anything changes, the audit events in its transaction, then
 * the access token signed. Errors: `invalid_token`, `session_expired`, `session_revoked`,
 * `refresh_token_reused`, `rate_limited`, `invalid_dpop_proof` (a bound session's token without
 * a proof), and whatever `checkDelivery` throws.
 */
export async function refresh(ctx: EngineContext, input: RefreshInput): Promise<TokenGrant> {
  const { limits, audit } = ctx;
  let issued: Awaited<ReturnType<typeof rotateRefreshToken>>;
  let evaluated: { claims: Record<string, unknown> | undefined } | undefined;
  let addressCounted = false;
  try {
    issued = await rotateRefreshToken(ctx.sessions, {
      ...input,
      // Refused before anything changes, so a limited client keeps its token and retries
      // later. Racers inside the grace window are counted too: each gets a new access token.
      admit: (sessionId) => limits.local.reserve(limits.rules.refreshSession, sessionId),
      // Recorded when the session moves (another address or user agent than its last use),
      // in the rotation's transaction: an event per rotation cost a fifth of the refresh
      // throughput (bench row 3) and buries the moves that matter among thousands of rows.
      // Without the app's claims hook, `rotated` writes only for a session that moved: the common
      // refresh may then be one statement on PostgreSQL (issue 19).
      rotatedOnlyOnMove: ctx.claims === undefined,
      rotated: async (tx, session, user) => {
        // The app's claims inside the rotation's transaction: a hook that throws rolls the
        // rotation back, so the client keeps a token that still works (no successor it never got).
        evaluated = { claims: await customClaims(ctx.claims, { user, session }) };
        if (session.ip === input.ip && session.user_agent === input.userAgent) return;
        await audit.record(
          {
            type: 'refresh',
            userId: session.user_id,
            sessionId: session.id,
            ip: input.ip,
            userAgent: input.userAgent,
          },
          tx,
        );
      },
      requireBinding: ctx.policy.requireDpop,
      // The only write of that refusal: the owner sees that someone else holds the token. Counted
      // per address first, like an unknown token (issue 18): a thief without the key cannot fill
      // the owner's audit log, and the owner's own per-session budget is not touched.
      keyMismatch: async (tx, session) => {
        addressCounted = true;
        await limits.local.reserve(limits.rules.refreshAddress, limitAddress(input.ip));
        await audit.record(
          {
            type: 'dpop_key_mismatch',
            userId: session.user_id,
            sessionId: session.id,
            ip: input.ip,
            userAgent: input.userAgent,
          },
          tx,
        );
      },
      // In the transaction that revokes the session: no revocation without its record.
      reused: (tx, session) =>
        audit.record(
          {
            type: 'reuse_detected',
            userId: session.user_id,
            sessionId: session.id,
            ip: input.ip,
            userAgent: input.userAgent,
          },
          tx,
        ),
    });
  } catch (error) {
    if (error instanceof RotorError && error.code === 'invalid_token' && !addressCounted) {
      // Only look-ups of unknown tokens count per address (issue 13, item 7): a client behind
      // a guessing neighbour still refreshes its own, valid token.
      await limits.local.reserve(limits.rules.refreshAddress, limitAddress(input.ip));
    }
    throw error;
  }
  // A grace-window racer rotated nothing: its claims are evaluated now (a throw loses nothing).
  return grantTokens(ctx, issued.user, issued, evaluated);
}
