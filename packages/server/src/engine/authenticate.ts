import { RotorError } from '../errors.js';
import { assertSessionActive, sessionHasExpired } from '../sessions/session-state.js';
import type { SessionRow, UserRow } from '../store/store.js';
import type { AccessTokenClaims } from '../tokens/access-token.js';
import type { EngineContext } from './context.js';

/** The caller of a protected request: a valid access token whose session is still active. */
export interface Principal {
  claims: AccessTokenClaims;
  session: SessionRow;
  user: UserRow;
}

/**
 * {@link authenticate}'s answer when both caches hold it, synchronously: the token verified before
 * and unexpired, its session and user cached while the store vouches for them (so a revocation
 * counts at once, as in `authenticate`), the session judged by the clock now. Undefined when
 * anything is not cached, or the session looks expired (it may have been extended elsewhere): then
 * `authenticate` decides. The check of every request costs no promise this way.
 * Errors: `invalid_token`, `session_revoked`, as `authenticate`'s.
 */
export function authenticateFromCache(
  ctx: Pick<EngineContext, 'clock' | 'accessTokens' | 'sessionStates'>,
  accessToken: string,
): Principal | undefined {
  const { sessionStates, clock } = ctx;
  // In `authenticate`'s order: changes made elsewhere first (a key withdrawn, a session revoked).
  const current = sessionStates.sync();
  const claims = ctx.accessTokens.cached(accessToken);
  if (claims === undefined) return undefined;
  const state = sessionStates.peek(claims.sid, current);
  if (state === undefined) return undefined;
  const now = clock.now();
  if (sessionHasExpired(state.session, now)) return undefined;
  if (state.session.user_id !== claims.sub) {
    throw new RotorError('invalid_token', 'The access token names no session of this user.');
  }
  assertSessionActive(state.session, now);
  return { claims, session: state.session, user: state.user };
}

/**
 * Verifies an access token and checks that its session is still active (seed 001's KeyStore
 * check), through the session-state cache. Errors: the access token's (`invalid_token`,
 * `token_expired`), `session_revoked`, `session_expired`.
 */
export async function authenticate(
  ctx: Pick<EngineContext, 'store' | 'clock' | 'accessTokens' | 'sessionStates'>,
  accessToken: string,
): Promise<Principal> {
  const { sessionStates, clock } = ctx;
  const read = (id: string) => ctx.store.findSessionWithUser(id);
  // Changes made elsewhere first: among them, perhaps, the key that signed this token withdrawn.
  const current = sessionStates.sync();
  const claims = await ctx.accessTokens.verify(accessToken);
  let state = await sessionStates.get(claims.sid, read, current);
  if (state && sessionHasExpired(state.session, clock.now())) {
    // Another instance's refresh may have extended the session without telling this cache
    // (only revocations notify): read it again before calling it expired.
    sessionStates.session(claims.sid);
    state = await sessionStates.get(claims.sid, read);
  }
  if (!state || state.session.user_id !== claims.sub) {
    throw new RotorError('invalid_token', 'The access token names no session of this user.');
  }
  assertSessionActive(state.session, clock.now());
  return { claims, session: state.session, user: state.user };
}
