import { RotorError } from '../errors.js';
import { verifyWithinBudget } from '../limits/password-attempts.js';
import type { EmailTokenPurpose } from '../store/schema.js';
import type { EmailTokenRow, Store, UserRow } from '../store/store.js';
import type { EngineContext } from './context.js';
import { hashEmailToken, isEmailToken } from './email-tokens.js';
import { limitAddress } from './limit-subject.js';

/** A link's token, as the page read it from the fragment, and where the request came from. */
export interface LinkInput {
  token: string;
  ip?: string | null | undefined;
}

/** What a redeemed link acts on, inside the transaction that consumed it. */
export interface RedeemedLink {
  tx: Store;
  /** The token's row, consumed. */
  row: EmailTokenRow;
  /** The user's row, locked until the transaction ends. */
  user: UserRow;
  /** The transaction's time (ms). */
  now: number;
}

/** A link found live by {@link findLink}, not yet redeemed. */
export interface FoundLink {
  purpose: EmailTokenPurpose;
  /** The token's SHA-256, as stored. */
  hash: string;
  /** The token's row when it was found (redeemFoundLink consumes it only if it is still live). */
  row: EmailTokenRow;
}

/**
 * Finds the live token of a link, without consuming it: the cheap half of a redemption, so that
 * work a link pays for (a new password's argon2 hash) is spent only on a link that exists. Unknown,
 * used, expired or replaced: `invalid_link`, counted against the address's login budget like a
 * wrong password (`rate_limited` once spent), so the token space is not searched.
 */
export async function findLink(
  ctx: Pick<EngineContext, 'store' | 'clock' | 'limits'>,
  purpose: EmailTokenPurpose,
  input: LinkInput,
): Promise<FoundLink> {
  const hash = isEmailToken(input.token) ? hashEmailToken(input.token) : undefined;
  let found: EmailTokenRow | undefined;
  await verifyWithinBudget(
    ctx.limits.shared,
    ctx.limits.rules,
    { address: limitAddress(input.ip) },
    async () => {
      found = hash ? await ctx.store.findEmailToken(hash, purpose, ctx.clock.now()) : undefined;
      return found !== undefined;
    },
  );
  const row = found as EmailTokenRow | undefined;
  if (!hash || !row) throw new RotorError('invalid_link');
  return { purpose, hash, row };
}

/**
 * Redeems a link {@link findLink} found, once: the token is consumed in the transaction that acts
 * on it, after the user's row is locked (the order a password change takes, so the two never
 * deadlock), by one conditional `DELETE … RETURNING` that re-checks it is still there and
 * unexpired: of two racing redemptions of one token, exactly one consumes it, and a token used,
 * replaced or expired since it was found is `invalid_link`. The link is void when the account's
 * address moved since it was mailed (a reset link sent to an old address resets nothing), except
 * an undo's, whose point is that the address moved.
 */
export async function redeemFoundLink<T>(
  ctx: Pick<EngineContext, 'store' | 'clock'>,
  { purpose, hash, row: pending }: FoundLink,
  act: (link: RedeemedLink) => Promise<T>,
): Promise<T> {
  return ctx.store.transaction(async (tx) => {
    const user = await tx.lockUser(pending.user_id);
    const now = ctx.clock.now();
    const row = await tx.consumeEmailToken(hash, purpose, now);
    if (!user || !row || (purpose !== 'email_undo' && row.email !== user.email)) {
      throw new RotorError('invalid_link');
    }
    return act({ tx, row, user, now });
  });
}

/**
 * Redeems a link of an account mail once: {@link findLink}, then {@link redeemFoundLink}.
 * Errors: `invalid_link`, `rate_limited`.
 */
export async function redeemLink<T>(
  ctx: Pick<EngineContext, 'store' | 'clock' | 'limits'>,
  purpose: EmailTokenPurpose,
  input: LinkInput,
  act: (link: RedeemedLink) => Promise<T>,
): Promise<T> {
  return redeemFoundLink(ctx, await findLink(ctx, purpose, input), act);
}
