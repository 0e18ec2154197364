import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { assertPlainText } from '../lib/plain-text.js';
import type { ClientInfo } from '../sessions/context.js';
import { startSession } from '../sessions/start-session.js';
import type { UserRow } from '../store/store.js';
import type { EngineContext } from './context.js';
import { customClaims } from './custom-claims.js';
import { grantTokens, type TokenGrant } from './grant.js';
import { findAccountById } from './user-directory.js';

/** How a signed-in device's session is opened. */
export interface SessionRequest extends ClientInfo {
  deviceName: string | null;
  delivery: Delivery;
  /** The OAuth client the session is issued to. */
  clientId?: string | undefined;
}

/** The app's own sign-in: who is signed in, on which device, and how the tokens travel. */
export type SignInInput = {
  userId: string;
  deviceName?: string | null | undefined;
  delivery: Delivery;
  clientId?: string | undefined;
} & ClientInfo;

/**
 * Opens the session of a user whose credentials were verified (a password, a ticket, the app's
 * own sign-in): evictions past the session cap and `login_succeeded` commit with it, and the
 * grant carries a fresh device token. `user` is the row as read before the verification
 * (`startSession` checks its epoch has not moved since).
 */
export async function startSignedInSession(
  ctx: EngineContext,
  user: UserRow,
  input: SessionRequest,
): Promise<TokenGrant> {
  const nowSeconds = Math.floor(ctx.sessions.clock.now() / 1000);
  const evaluated: { claims: Record<string, unknown> | undefined } = { claims: undefined };
  const issued = await startSession(ctx.sessions, {
    user,
    deviceName: input.deviceName,
    delivery: input.delivery,
    clientId: input.clientId ?? null,
    ip: input.ip,
    userAgent: input.userAgent,
    dpopJkt: input.dpopJkt,
    started: async (tx, session, evicted) => {
      for (const sessionId of evicted) {
        await ctx.audit.record(
          { type: 'session_evicted', userId: user.id, sessionId, ip: input.ip },
          tx,
        );
      }
      await ctx.audit.record(
        {
          type: 'login_succeeded',
          userId: user.id,
          sessionId: session.id,
          ip: input.ip,
          userAgent: input.userAgent,
        },
        tx,
      );
      // The app's claims inside the transaction: a hook that throws leaves no session behind
      // (one nobody holds would count against the session cap and evict a real one).
      evaluated.claims = await customClaims(ctx.claims, { user, session });
    },
  });
  const granted = await grantTokens(ctx, user, issued, evaluated);
  // At the epoch the session was created under (startSession checked it had not moved).
  granted.deviceToken = await ctx.deviceTokens.issue(user, nowSeconds);
  return granted;
}

/**
 * The app's own sign-in (issue 16): the app vouches that `userId` is signed in on this device,
 * and Rotor starts the session exactly as its own login does. `not_found` for an unknown user;
 * `invalid_request` for a device name that is not plain text.
 */
export async function signIn(ctx: EngineContext, input: SignInInput): Promise<TokenGrant> {
  if (input.deviceName) assertPlainText(input.deviceName, 'deviceName', { identity: true });
  const account = await findAccountById(ctx, input.userId);
  if (!account) throw new RotorError('not_found', 'No user has this id.');
  return startSignedInSession(ctx, account.user, {
    deviceName: input.deviceName ?? null,
    delivery: input.delivery,
    clientId: input.clientId,
    ip: input.ip,
    userAgent: input.userAgent,
    dpopJkt: input.dpopJkt,
  });
}
