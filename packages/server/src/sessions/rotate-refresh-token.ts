import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { RateLimitedError } from '../limits/limiter.js';
import type { SessionRow, Store, TokenRow, UserRow } from '../store/store.js';
import { deriveSuccessor, hashRefreshToken, isRefreshTokenShape } from '../tokens/refresh-token.js';
import type { ClientInfo, SessionContext } from './context.js';
import { sessionEndError, sessionExpired } from './session-state.js';
import type { IssuedSession } from './start-session.js';

type Decision =
  | {
      ok: true;
      session: SessionRow;
      user: UserRow;
      /** The refresh token to hand out: the new successor, or the live tip of a racer's chain. */
      refreshToken: string;
      /** Milliseconds since the epoch. */
      refreshExpiresAtMs: number;
      rotated: boolean;
    }
  | { ok: false; error: RotorError };

/**
 * How far a racer's chain is followed to its live tip, in one query. Each link is a rotation
 * inside one grace window: a client refreshing that often is a runaway loop, not a tab, and is
 * refused (`rate_limited`) without revoking anything (nobody presented a token outside its window).
 */
const MAX_CHAIN_LINKS = 1_000;

/**
 * Exchanges a refresh token for its successor: the refresh decision of DESIGN.md, in one
 * transaction that holds the session's row (so a revocation and a rotation of one session are
 * ordered: issue 15, item 4) and measures time with the database's clock (`decisionTime`, item 2).
 * A live token is rotated by a conditional update only one racer can win; a racer within the grace
 * window of its token's rotation gets the live tip of the token's chain, re-derived rather than
 * stored (item 1: tabs that rotated twice meanwhile do not log a sibling out); a rotated token
 * presented later revokes the whole session, its audit event in the same transaction (item 5),
 * and the revocation is committed, then reported.
 */
export async function rotateRefreshToken(
  ctx: SessionContext,
  input: {
    refreshToken: string;
    delivery?: Delivery | undefined;
    /**
     * Set by the OAuth token endpoint: the token must have been issued to this client. Unset
     * (`/auth/refresh`), only a session issued through `/auth` refreshes.
     */
    clientId?: string | undefined;
    /**
     * Runs before a live token is rotated, and before a racer inside the grace window gets the
     * successor already issued, with nothing changed yet; throwing refuses the refresh with nothing
     * written (the per-session rate limit). Racers count: each gets a new access token, so replays
     * inside the window must not escape the budget (issue 13, item 8).
     */
    admit?: ((sessionId: string) => Promise<Admission | void>) | undefined;
    /**
     * Judges the session's stored delivery before anything is written, for a live token and a
     * grace-window racer alike (both are handed the session's next tokens); throwing refuses the
     * refresh with nothing written. The HTTP `Token-Delivery` rule: `refreshDelivery`.
     */
    checkDelivery?: ((stored: string) => void) | undefined;
    /**
     * Runs in the rotation's transaction once it has rotated, with the session as it was before
     * (the audit event commits with it; a throw rolls the rotation back).
     */
    rotated?: ((tx: Store, session: SessionRow, user: UserRow) => Promise<void>) | undefined;
    /**
     * `rotated` does nothing when the session did not move (same address and user agent): the
     * rotation may then be made in one statement, without a transaction for `rotated` to run in
     * (`rotateInOneStatement`). False or unset: always the transaction.
     */
    rotatedOnlyOnMove?: boolean | undefined;
    /** Runs in the transaction that revokes the session for re-use (its audit event). */
    reused?: ((tx: Store, session: SessionRow) => Promise<void>) | undefined;
    /**
     * Runs when a bound session's token came without a proof by its key (the only write of that
     * refusal: its audit event).
     */
    keyMismatch?: ((tx: Store, session: SessionRow) => Promise<void>) | undefined;
    /** `ROTOR_DPOP=required`: a session not bound to a key (from before) refreshes no more. */
    requireBinding?: boolean | undefined;
  } & ClientInfo,
): Promise<IssuedSession & { rotated: boolean; user: UserRow }> {
  if (!isRefreshTokenShape(input.refreshToken)) {
    throw new RotorError('invalid_token', 'The refresh token is not valid.');
  }
  const presentedHash = hashRefreshToken(input.refreshToken);
  const successor = deriveSuccessor(ctx.hmacKey, input.refreshToken);
  const successorHash = hashRefreshToken(successor);
  const fast = await rotateInOneStatement(ctx, presentedHash, successor, successorHash, input);
  if (fast) return fast;
  const decision = await ctx.store.transaction((tx) =>
    decide(ctx, tx, { presentedHash, successor, successorHash }, input),
  );
  if (!decision.ok) throw decision.error;
  // The successor's session, for the next refresh's one statement (issued-refresh-tokens.ts).
  if (decision.rotated) ctx.issued?.remember(successorHash, decision.session.id);
  return {
    session: decision.session,
    user: decision.user,
    refreshToken: decision.refreshToken,
    refreshExpiresAtMs: decision.refreshExpiresAtMs,
    rotated: decision.rotated,
  };
}

/** What {@link rotateRefreshToken}'s `admit` may return: the attempt, to give back if unused. */
export interface Admission {
  release(): Promise<void>;
}

/**
 * The delivery a refresh stores on its session: the one asked for, except `body`, which is never
 * stored (a body answer leaves the session's own); undefined keeps the session's.
 */
function deliveryToStore(delivery: Delivery | undefined): Delivery | undefined {
  return delivery && delivery !== 'body' ? delivery : undefined;
}

/** The stored deliveries a session may have (`split` or `cookies`; `body` is never stored). */
const STORED_DELIVERIES = ['split', 'cookies'] as const;

/**
 * The common refresh in one round trip on PostgreSQL (issue 19): a live token whose session this
 * process knows (`ctx.issued`: it issued the token), admitted against the session's budget first,
 * then decided and written by one statement (`Store.rotateLiveRefreshToken`) under the same rules
 * and lock as {@link decide}. Undefined when the store has no such statement (SQLite), the session
 * is not known here, `rotated` needs a transaction, or the statement found anything but the common
 * case (it then wrote nothing): the caller decides in a transaction, which tells those cases apart.
 * The admission is given back on a fallback, so the full decision counts the attempt once.
 */
async function rotateInOneStatement(
  ctx: SessionContext,
  presentedHash: string,
  successor: string,
  successorHash: string,
  input: Parameters<typeof rotateRefreshToken>[1],
): Promise<(IssuedSession & { rotated: boolean; user: UserRow }) | undefined> {
  const store = ctx.store;
  if (store.rotateLiveRefreshToken === undefined) return undefined;
  if (input.rotated !== undefined && !input.rotatedOnlyOnMove) return undefined;
  const issued = ctx.issued;
  const sessionId = issued?.sessionOf(presentedHash);
  if (issued === undefined || sessionId === undefined) return undefined;
  // The stored deliveries the Token-Delivery rule lets this request be answered for, asked of the
  // rule itself; after the rotation it is asked once more with the one stored (it records it).
  const check = input.checkDelivery;
  const deliveries = STORED_DELIVERIES.filter((stored) => {
    if (check === undefined) return true;
    try {
      check(stored);
      return true;
    } catch {
      return false;
    }
  });
  let admission: Admission | void;
  try {
    admission = await input.admit?.(sessionId);
  } catch (error) {
    // A spent budget is not an answer yet: the token may be rotated (re-use), the session revoked,
    // or the proof's key wrong, which `decide` answers whatever the budget; it admits where it
    // would hand out tokens, and refuses there with nothing written.
    if (error instanceof RateLimitedError) return undefined;
    throw error;
  }
  issued.forget(presentedHash);
  let rotation;
  try {
    rotation = await store.rotateLiveRefreshToken({
      tokenHash: presentedHash,
      sessionId,
      successorHash,
      now: ctx.statementTime?.(),
      refreshTtlMs: ctx.policy.refreshTtl * 1000,
      clientId: input.clientId ?? null,
      dpopJkt: input.dpopJkt ?? null,
      requireBinding: input.requireBinding ?? false,
      deliveries,
      delivery: deliveryToStore(input.delivery) ?? null,
      ip: input.ip,
      userAgent: input.userAgent,
    });
  } catch (error) {
    await admission?.release();
    throw error;
  }
  if (rotation === undefined) {
    await admission?.release();
    return undefined;
  }
  const { session, user, refreshExpiresAt } = rotation;
  check?.(session.delivery);
  issued.remember(successorHash, session.id);
  return {
    session: {
      ...session,
      last_used_at: rotation.now,
      idle_expires_at: refreshExpiresAt,
      ip: input.ip,
      user_agent: input.userAgent,
      delivery: deliveryToStore(input.delivery) ?? session.delivery,
    },
    user,
    refreshToken: successor,
    refreshExpiresAtMs: refreshExpiresAt,
    rotated: true,
  };
}

async function decide(
  ctx: SessionContext,
  tx: Store,
  hashes: { presentedHash: string; successor: string; successorHash: string },
  input: {
    delivery?: Delivery | undefined;
    clientId?: string | undefined;
    admit?: ((sessionId: string) => Promise<Admission | void>) | undefined;
    checkDelivery?: ((stored: string) => void) | undefined;
    rotated?: ((tx: Store, session: SessionRow, user: UserRow) => Promise<void>) | undefined;
    reused?: ((tx: Store, session: SessionRow) => Promise<void>) | undefined;
    keyMismatch?: ((tx: Store, session: SessionRow) => Promise<void>) | undefined;
    requireBinding?: boolean | undefined;
  } & ClientInfo,
): Promise<Decision> {
  const { presentedHash, successor, successorHash } = hashes;
  // Token, session and user in one read that locks the session's row: on PostgreSQL every
  // statement is a round trip. Only when one of them is missing are they read apart, to tell an
  // unknown token from a deleted account.
  const joined = await tx.findTokenWithSession(presentedHash);
  // After the lock: a time read before waiting for it would lag behind the holder's writes.
  const now = await ctx.decisionTime(tx);
  let token = joined?.token ?? (await tx.findTokenByHash(presentedHash));
  const session = joined?.session ?? (token && (await tx.findSession(token.session_id)));
  // A token issued to another client is as good as unknown, and changes nothing; so is an OAuth
  // client's token at /auth/refresh (no clientId), which would skip the client authentication that
  // RFC 6749 §6 requires of a confidential client's refresh.
  if (!token || !session || session.client_id !== (input.clientId ?? null)) {
    return { ok: false, error: new RotorError('invalid_token', 'The refresh token is not valid.') };
  }
  // The holder of one of the session's tokens learns why it ended (details.reason), nobody else.
  const ended = sessionEndError(session, now);
  if (ended) return { ok: false, error: ended };
  // RFC 9449 §5: a bound session's every token needs a proof by its key, and this is judged
  // before any branch that could answer with a token or revoke (issue 18): a thief who copied the
  // token but not the key gets nothing, inside the grace window or after it, and cannot end the
  // session by replaying a rotated token either. Refused with nothing written but the audit event.
  if (session.dpop_jkt !== null && session.dpop_jkt !== input.dpopJkt) {
    await input.keyMismatch?.(tx, session);
    return {
      ok: false,
      error:
        input.dpopJkt === undefined
          ? new RotorError(
              'invalid_dpop_proof',
              'This session is bound to a key (DPoP): send a proof made with it.',
            )
          : new RotorError('invalid_token', 'The refresh token is bound to another key.'),
    };
  }
  if (session.dpop_jkt === null && input.requireBinding) {
    return {
      ok: false,
      error: new RotorError(
        'invalid_token',
        'This session is not bound to a key and DPoP is required; sign in again with a proof.',
      ),
    };
  }
  // A live session whose presented token expired unrotated: the idle lifetime it carried ran out.
  if (token.rotated_at === null && token.expires_at <= now) {
    return { ok: false, error: sessionExpired(session, now) };
  }
  // Read inside the transaction: once it commits, nothing but signing is left that could fail and
  // turn a committed rotation into an error response.
  const user = joined?.user ?? (await tx.findUserById(session.user_id));
  if (!user) {
    return {
      ok: false,
      error: new RotorError('session_revoked', 'The account of this session no longer exists.'),
    };
  }

  // After the session's own state (a dead session says so first), before any branch that writes.
  input.checkDelivery?.(session.delivery);

  if (token.rotated_at === null) {
    await input.admit?.(session.id);
    if (await tx.markTokenRotated(token.token_hash, now, successorHash)) {
      const refreshExpiresAt = Math.min(
        now + ctx.policy.refreshTtl * 1000,
        session.max_expires_at ?? Infinity,
      );
      await tx.insertToken({
        session_id: session.id,
        type: 'refresh',
        token_hash: successorHash,
        created_at: now,
        expires_at: refreshExpiresAt,
        rotated_at: null,
        successor_hash: null,
      });
      const patch = {
        last_used_at: now,
        idle_expires_at: refreshExpiresAt,
        ip: input.ip,
        user_agent: input.userAgent,
        delivery: deliveryToStore(input.delivery) ?? session.delivery,
      };
      await tx.touchSession(session.id, patch);
      await input.rotated?.(tx, session, user);
      return {
        ok: true,
        session: { ...session, ...patch },
        user,
        refreshToken: successor,
        refreshExpiresAtMs: refreshExpiresAt,
        rotated: true,
      };
    }
    // Another request rotated it between our read and our update: re-read, then judge as a racer.
    token = (await tx.findTokenByHash(presentedHash)) as TokenRow;
  }

  const tip = await liveTipInGrace(ctx, tx, token, successor, now);
  if (tip) {
    await input.admit?.(session.id);
    return {
      ok: true,
      session,
      user,
      refreshToken: tip.refreshToken,
      refreshExpiresAtMs: tip.row.expires_at,
      rotated: false,
    };
  }
  // Issue 18, "a retry is not a theft": only the key's holder gets here for a bound session
  // (checked above), so its rotated token presented again while the successor was never used is a
  // response that never arrived, however late: it gets that same successor, and nothing changes.
  const retry = session.dpop_jkt !== null && (await unusedSuccessor(tx, token, successorHash, now));
  if (retry) {
    await input.admit?.(session.id);
    return {
      ok: true,
      session,
      user,
      refreshToken: successor,
      refreshExpiresAtMs: retry.expires_at,
      rotated: false,
    };
  }
  if (await tx.revokeSession(session.id, now, 'reuse_detected')) await input.reused?.(tx, session);
  return {
    ok: false,
    error: new RotorError(
      'refresh_token_reused',
      'This refresh token was already used; the session has been revoked for safety. Sign in again.',
    ),
  };
}

/**
 * The live tip of the chain that starts at `token`, if `token` was rotated within the grace window
 * (measured from its own rotation, with the decision's clock): its successor, or, when that one
 * was rotated too (another tab, a retry), the successor's successor, and so on, found in one
 * query. The tip's value is re-derived from `token` link by link (never stored), and must hash to
 * the row the chain ends in. Undefined outside the window, with no grace window, or when the chain
 * ends in nothing live; a chain too long to follow is refused without revoking.
 */
async function liveTipInGrace(
  ctx: SessionContext,
  tx: Store,
  token: TokenRow,
  successor: string,
  now: number,
): Promise<{ refreshToken: string; row: TokenRow } | undefined> {
  // With no grace window there is no second exchange, even for a racer whose transaction began
  // before the winner's rotation (its `now` is then earlier than `rotated_at`).
  const grace = ctx.policy.refreshGrace * 1000;
  if (token.rotated_at === null || grace === 0 || now - token.rotated_at >= grace) return undefined;
  const tip = await tx.findChainTip(token.token_hash, MAX_CHAIN_LINKS);
  if (!tip) return undefined;
  if (tip.token.rotated_at !== null) {
    throw new RateLimitedError(grace);
  }
  let value = successor;
  for (let link = 1; link < tip.links; link += 1) value = deriveSuccessor(ctx.hmacKey, value);
  if (hashRefreshToken(value) !== tip.token.token_hash || tip.token.expires_at <= now) {
    return undefined;
  }
  return { refreshToken: value, row: tip.token };
}

/** The successor of a rotated `token` if it exists, was never rotated itself and is unexpired. */
async function unusedSuccessor(
  tx: Store,
  token: TokenRow,
  successorHash: string,
  now: number,
): Promise<TokenRow | undefined> {
  if (token.successor_hash !== successorHash) return undefined;
  const next = await tx.findTokenByHash(successorHash);
  if (!next || next.rotated_at !== null || next.expires_at <= now) return undefined;
  return next;
}
