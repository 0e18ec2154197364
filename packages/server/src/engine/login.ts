import { checkLoginInput, verifyPassword } from '../accounts/accounts.js';
import { normalizeEmail } from '../accounts/email.js';
import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { verifyWithinBudget } from '../limits/password-attempts.js';
import type { ClientInfo } from '../sessions/context.js';
import { startSession } from '../sessions/start-session.js';
import type { EngineContext } from './context.js';
import { grantTokens, type TokenGrant } from './grant.js';
import { limitAddress } from './limit-subject.js';

/** A sign-in with a password (RFC 6749's resource owner credentials, `/auth/login`). */
export type LoginInput = {
  email: string;
  password: string;
  deviceName: string | null;
  delivery: Delivery;
  /** The OAuth client the session is issued to. */
  clientId?: string;
  /**
   * A device token from an earlier sign-in on this client, if it has one; several are tried
   * in turn (a browser's cookie header may carry a tossed one beside its own).
   */
  deviceToken?: string | readonly string[] | undefined;
} & ClientInfo;

/**
 * Verifies the password within the rate limits, opens a session (`startSession`, which may end
 * the least recently used ones) and grants its tokens, with a new device token. A failure is one
 * `invalid_credentials` whether the account exists or not, recorded as `login_failed`.
 * Errors: `invalid_request`, `rate_limited`, `invalid_credentials`, `session_revoked`.
 */
export async function login(ctx: EngineContext, input: LoginInput): Promise<TokenGrant> {
  // Before anything else: input that is not plain text names no account (lib/plain-text.ts).
  checkLoginInput(input);
  const email = normalizeEmail(input.email);
  const address = limitAddress(input.ip);
  const nowSeconds = Math.floor(ctx.clock.now() / 1000);
  const user = await ctx.store.findUserByEmail(email);
  let device: string | undefined;
  const candidates =
    typeof input.deviceToken === 'string' ? [input.deviceToken] : input.deviceToken;
  for (const token of user ? (candidates ?? []) : []) {
    device = await ctx.deviceTokens.nonceFor(token, user!, nowSeconds);
    if (device !== undefined) break;
  }
  // Reserved before the password is verified: a spent budget costs no hashing, and attempts
  // in flight cannot all pass a check none of them has counted in yet (issue 13, item 1). The
  // right password spends no budget: honest users behind one address never add up.
  const subjects = { account: device === undefined ? email : undefined, device, address };
  const verified = await verifyWithinBudget(ctx.limits.shared, ctx.limits.rules, subjects, () =>
    verifyPassword(ctx.accounts, user, input.password),
  );
  if (!user || !verified) {
    await ctx.audit.record({
      type: 'login_failed',
      userId: user?.id ?? null,
      ip: input.ip,
      userAgent: input.userAgent,
    });
    throw new RotorError('invalid_credentials', 'The email or password is incorrect.');
  }
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
  const granted = await grantTokens(ctx, user, issued);
  // At the epoch the session was created under (startSession checked it had not moved).
  granted.deviceToken = await ctx.deviceTokens.issue(user, nowSeconds);
  return granted;
}
