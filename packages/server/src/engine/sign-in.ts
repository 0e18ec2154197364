import type { AuditLog } from '../audit/audit-log.js';
import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { assertPlainText } from '../lib/plain-text.js';
import type { TokenGrant } from '../rotor.js';
import type { ClientInfo, SessionContext } from '../sessions/context.js';
import { startSession, type IssuedSession } from '../sessions/start-session.js';
import type { UserRow } from '../store/store.js';
import type { DeviceTokens } from '../tokens/device-token.js';
import { findAccountById, type UserSourceContext } from './user-directory.js';

/** What starting a signed-in session needs: the session rules, the audit log, the token signers. */
export interface SignInContext {
  sessions: SessionContext;
  audit: AuditLog;
  deviceTokens: DeviceTokens;
  /** Signs the grant's access token (with the app's claims) around an issued session. */
  grant(user: UserRow, issued: IssuedSession): Promise<TokenGrant>;
}

/** How a signed-in device's session is opened. */
export interface SessionRequest extends ClientInfo {
  deviceName: string | null;
  delivery: Delivery;
  /** The OAuth client the session is issued to. */
  clientId?: string | undefined;
}

/**
 * Opens the session of a user whose credentials were verified (a password, a ticket, the app's
 * own sign-in): evictions past the session cap and `login_succeeded` commit with it, and the
 * grant carries a fresh device token. `user` is the row as read before the verification
 * (`startSession` checks its epoch has not moved since).
 */
export async function startSignedInSession(
  ctx: SignInContext,
  user: UserRow,
  input: SessionRequest,
): Promise<TokenGrant> {
  const nowSeconds = Math.floor(ctx.sessions.clock.now() / 1000);
  const issued = await startSession(ctx.sessions, {
    user,
    deviceName: input.deviceName,
    delivery: input.delivery,
    clientId: input.clientId ?? null,
    ip: input.ip,
    userAgent: input.userAgent,
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
    },
  });
  const granted = await ctx.grant(user, issued);
  // At the epoch the session was created under (startSession checked it had not moved).
  granted.deviceToken = await ctx.deviceTokens.issue(user, nowSeconds);
  return granted;
}

/**
 * The app's own sign-in (issue 16): the app vouches that `userId` is signed in on this device,
 * and Rotor starts the session exactly as its own login does. `not_found` for an unknown user;
 * `invalid_request` for a device name that is not plain text.
 */
export async function signIn(
  ctx: SignInContext & UserSourceContext,
  input: { userId: string } & SessionRequest,
): Promise<TokenGrant> {
  if (input.deviceName) assertPlainText(input.deviceName, 'deviceName', { identity: true });
  const account = await findAccountById(ctx, input.userId);
  if (!account) throw new RotorError('not_found', 'No user has this id.');
  return startSignedInSession(ctx, account.user, input);
}
