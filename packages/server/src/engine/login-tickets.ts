import { createHash, randomBytes } from 'node:crypto';
import type { Delivery } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import { assertPlainText } from '../lib/plain-text.js';
import { verifyWithinBudget } from '../limits/password-attempts.js';
import type { ClientInfo } from '../sessions/context.js';
import type { LoginTicketRow } from '../store/store.js';
import type { EngineContext } from './context.js';
import type { TokenGrant } from './grant.js';
import { limitAddress } from './limit-subject.js';
import { startSignedInSession } from './sign-in.js';
import { findAccountById } from './user-directory.js';

/** Seconds a login ticket can be redeemed: enough for a redirect, too short to be worth stealing. */
export const LOGIN_TICKET_TTL_SECONDS = 60;
/** 256 random bits, base64url: 43 characters. */
const TICKET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** What the app's backend asks a ticket for (`POST /admin/login-tickets`). */
export interface IssueLoginTicketInput {
  userId: string;
  deviceName?: string | null | undefined;
}

/** A ticket presented at `POST /auth/login`, with how the session's tokens travel. */
export type RedeemLoginTicketInput = {
  ticket: string;
  deviceName?: string | null | undefined;
  delivery: Delivery;
  clientId?: string | undefined;
} & ClientInfo;

/** The stored form of a ticket: its SHA-256 (256 random bits need no slow hash). */
export function hashLoginTicket(ticket: string): string {
  return createHash('sha256').update(ticket).digest('base64url');
}

/**
 * Issues a single-use login ticket for `userId` (issue 16): the sign-in of a backend not written
 * in Node, which vouches for its user through `POST /admin/login-tickets`; the browser or app then
 * redeems it at `POST /auth/login`. Only the ticket's hash is stored. `not_found` for an unknown
 * user; `invalid_request` for a device name that is not plain text.
 */
export async function issueLoginTicket(
  ctx: Pick<EngineContext, 'store' | 'clock' | 'users' | 'audit'>,
  input: IssueLoginTicketInput,
  /** Who asked (the admin API's caller), for the audit event `login_ticket_issued`. */
  client: Partial<ClientInfo> = {},
): Promise<{ ticket: string; expiresIn: number }> {
  if (input.deviceName) assertPlainText(input.deviceName, 'deviceName', { identity: true });
  const account = await findAccountById(ctx, input.userId);
  if (!account) throw new RotorError('not_found', 'No user has this id.');
  const ticket = randomBytes(32).toString('base64url');
  const now = ctx.clock.now();
  await ctx.store.insertLoginTicket({
    ticket_hash: hashLoginTicket(ticket),
    user_id: account.user.id,
    device_name: input.deviceName?.trim() || null,
    session_epoch: account.user.session_epoch,
    created_at: now,
    expires_at: now + LOGIN_TICKET_TTL_SECONDS * 1000,
  });
  await ctx.audit.record({ type: 'login_ticket_issued', userId: account.user.id, ...client });
  return { ticket, expiresIn: LOGIN_TICKET_TTL_SECONDS };
}

/**
 * Redeems a login ticket: consumed in one conditional delete that exactly one of concurrent
 * redeemers wins, while unexpired; then the session starts as after a password login. Unknown,
 * used or expired: `invalid_credentials`, and the attempt counts against the address's login
 * budget like a wrong password (`rate_limited` once spent). The ticket's device name, when the
 * backend gave one, names the session; else `input.deviceName`.
 */
export async function redeemLoginTicket(
  ctx: EngineContext,
  input: RedeemLoginTicketInput,
): Promise<TokenGrant> {
  if (input.deviceName) assertPlainText(input.deviceName, 'deviceName', { identity: true });
  let consumed: LoginTicketRow | undefined;
  const address = limitAddress(input.ip);
  await verifyWithinBudget(ctx.limits.shared, ctx.limits.rules, { address }, async () => {
    consumed = TICKET_PATTERN.test(input.ticket)
      ? await ctx.store.consumeLoginTicket(hashLoginTicket(input.ticket), ctx.clock.now())
      : undefined;
    return consumed !== undefined;
  });
  const ticket = consumed as LoginTicketRow | undefined;
  const account = ticket && (await findAccountById(ctx, ticket.user_id));
  if (!account) {
    await ctx.audit.record({
      type: 'login_failed',
      userId: ticket?.user_id ?? null,
      ip: input.ip,
      userAgent: input.userAgent,
    });
    throw new RotorError('invalid_credentials', 'The login ticket is unknown, used or expired.');
  }
  // Under the epoch the ticket was issued in: a sign-out everywhere or a password change since
  // then ends the ticket with the sessions (startSession refuses a moved epoch).
  const user = { ...account.user, session_epoch: ticket.session_epoch };
  return startSignedInSession(ctx, user, {
    deviceName: ticket.device_name ?? input.deviceName ?? null,
    delivery: input.delivery,
    clientId: input.clientId,
    ip: input.ip,
    userAgent: input.userAgent,
    dpopJkt: input.dpopJkt,
  });
}
