import type { AccountLink } from './types.js';

const LINK = /^#(reset-password|verify-email|confirm-email|undo-email-change)=([A-Za-z0-9_-]{43})$/;

/**
 * Reads an account mail's link from the page's address (`#reset-password=<token>`, as Rotor's
 * mails build them on `ROTOR_APP_URL`) and removes it from the address bar and the history entry
 * at once, before anything else loads: the token then never reaches a bookmark, a shared screen,
 * the history, or a third-party request (fragments are never sent in `Referer`; docs/security.md,
 * "Account mails"). Null when the address carries no link. Call it first thing on page load.
 * @example
 * const link = takeAccountLink();
 * if (link?.action === 'reset-password') showResetForm(link.token);
 */
export function takeAccountLink(
  page: { location: Location; history: History } = globalThis as unknown as {
    location: Location;
    history: History;
  },
): AccountLink | null {
  const match = LINK.exec(page.location?.hash ?? '');
  if (!match) return null;
  page.history.replaceState(page.history.state, '', page.location.pathname + page.location.search);
  return { action: match[1] as AccountLink['action'], token: match[2]! };
}
