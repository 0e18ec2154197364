import { RotorError } from '../errors.js';

/** Items per page when the caller names no limit. */
export const DEFAULT_PAGE_LIMIT = 50;
/** The largest page: 100 sessions are about 40 KB of JSON (300 made 283 KB unpaged). */
export const MAX_PAGE_LIMIT = 100;

/** Which page a caller wants: at most `limit` items after `cursor` (a `nextCursor` it was given). */
export interface PageRequest {
  /** 1 to {@link MAX_PAGE_LIMIT}; {@link DEFAULT_PAGE_LIMIT} when absent. */
  limit?: number | undefined;
  /** Opaque: the `nextCursor` of the previous page; absent or null for the first page. */
  cursor?: string | null | undefined;
}

/** One page of a list, and the cursor of the next page (null on the last one). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** The largest cursor accepted, in characters: real ones are under 80. */
const MAX_CURSOR_LENGTH = 200;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** A page limit checked: a whole number from 1 to 100, else `invalid_request` on `limit`. */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw badPage('limit', `The limit must be a whole number from 1 to ${MAX_PAGE_LIMIT}.`);
  }
  return limit;
}

/**
 * A cursor for the keyset `parts` of the last item of a page: `kind` and the parts joined with
 * `:`, base64url. Opaque to clients, so the key can change without breaking an API contract; the
 * kind keeps one list's cursor from being replayed against another.
 */
export function encodeCursor(kind: string, parts: readonly (string | number)[]): string {
  return Buffer.from([kind, ...parts].join(':')).toString('base64url');
}

/**
 * The keyset parts of a cursor made by {@link encodeCursor} for `kind`, each checked by `valid`;
 * anything else is `invalid_request` on `cursor`, and no query runs with it.
 */
export function decodeCursor(
  kind: string,
  cursor: string,
  valid: readonly ((part: string) => boolean)[],
): string[] {
  if (cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor)) throw badCursor();
  const [head, ...parts] = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  if (head !== kind || parts.length !== valid.length) throw badCursor();
  if (!parts.every((part, i) => valid[i]!(part))) throw badCursor();
  return parts;
}

/**
 * The `?limit=` and `?cursor=` of a request's query string, as a {@link PageRequest}. A value that
 * is repeated, empty or not a whole number is `invalid_request` with `details.field` naming it.
 */
export function pageQuery(query: unknown): PageRequest {
  const { limit, cursor } = (query ?? {}) as Record<string, unknown>;
  const page: PageRequest = {};
  if (limit !== undefined) {
    if (typeof limit !== 'string' || !/^[0-9]{1,4}$/.test(limit)) {
      throw badPage('limit', `The limit must be a whole number from 1 to ${MAX_PAGE_LIMIT}.`);
    }
    page.limit = pageLimit(Number(limit));
  }
  if (cursor !== undefined) {
    if (typeof cursor !== 'string' || cursor === '') throw badCursor();
    page.cursor = cursor;
  }
  return page;
}

/** Whether `value` is a whole number of milliseconds that a cursor may carry. */
export function isTimePart(value: string): boolean {
  return /^[0-9]{1,16}$/.test(value) && Number.isSafeInteger(Number(value));
}

function badCursor(): RotorError {
  return badPage('cursor', 'The cursor is not one this list gave out; start again without it.');
}

function badPage(field: 'limit' | 'cursor', message: string): RotorError {
  return new RotorError('invalid_request', message, { details: { field } });
}
