import { isId } from '../lib/ids.js';
import {
  decodeCursor,
  encodeCursor,
  isTimePart,
  pageLimit,
  type Page,
  type PageRequest,
} from '../lib/paging.js';
import type { SessionRow } from '../store/store.js';
import type { SessionContext } from './context.js';

const SESSION_CURSOR = 's';

/**
 * A page of the user's live sessions (neither revoked nor expired), newest first: keyset paging
 * on (`created_at`, `id`), so a page costs one indexed read however deep it is, and sessions
 * opened meanwhile shift nothing. The cursor carries the last session's creation time and id.
 */
export async function listUserSessions(
  ctx: Pick<SessionContext, 'store' | 'clock'>,
  userId: string,
  page: PageRequest = {},
): Promise<Page<SessionRow>> {
  const limit = pageLimit(page.limit);
  let after: { createdAt: number; id: string } | undefined;
  if (page.cursor) {
    const [createdAt, id] = decodeCursor(SESSION_CURSOR, page.cursor, [isTimePart, isId]);
    after = { createdAt: Number(createdAt), id: id! };
  }
  const { rows, more } = await ctx.store.listActiveSessions(userId, ctx.clock.now(), {
    limit,
    after,
  });
  const last = rows.at(-1);
  return {
    items: rows,
    nextCursor: more && last ? encodeCursor(SESSION_CURSOR, [last.created_at, last.id]) : null,
  };
}
