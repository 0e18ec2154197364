import type { RetryableCode } from './errors.js';

/** How tokens travel (API.md, "Token delivery"). */
export type Delivery = 'split' | 'cookies' | 'body';

/**
 * Why the client signed out: `logout` and `logout_all` were asked for here (or in another tab);
 * the others were found out from the server. {@link SessionEndReason} says more when it knows.
 */
export type SignOutReason = 'logout' | 'logout_all' | 'expired' | 'revoked' | 'reuse_detected';

/**
 * Why the server ended the session, from `details.reason` of `401 session_revoked` or
 * `session_expired` (docs/api.md, "Why a session ended"): `logout_all` is "signed out everywhere",
 * `revoked` "revoked from another device", `idle` "unused for longer than the refresh lifetime".
 */
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

/**
 * Every {@link SessionEndReason}, as a list a program can read; the server's `SessionEndReason` is
 * the same list (a test compares the two).
 */
export const SESSION_END_REASONS = [
  'logout',
  'logout_all',
  'revoked',
  'reuse_detected',
  'admin',
  'password_changed',
  'password_reset',
  'email_change_undone',
  'session_limit',
  'idle',
  'max_age',
] as const;

/**
 * What started a refresh: the timer shortly before expiry (`scheduled`), a call that found the
 * access token expiring (`due`), a `401` refusing the access token (`token_expired`,
 * `invalid_token`), {@link RotorClient.refresh} or `restore()` (`manual`), or another tab's refresh
 * taken over (`other-tab`).
 */
export type RefreshTrigger =
  'scheduled' | 'due' | 'token_expired' | 'invalid_token' | 'manual' | 'other-tab';

/** A request whose access token was refused with `401 token_expired` or `invalid_token`. */
export interface TokenRefusal {
  code: RetryableCode;
  method: string;
  url: string;
}

export interface RotorUser {
  id: string;
  email: string;
  name: string | null;
  /** The address was proven by a link mailed to it (issue 17). */
  emailVerified: boolean;
  createdAt: string;
}

/** What a password reset or an email change's undo did: the account, and the sessions ended. */
export interface AccountRecovery {
  user: RotorUser;
  /** Every session of the user ended; this many were live. */
  sessionsEnded: number;
}

/**
 * The action and token of an account mail's link (`${ROTOR_APP_URL}#reset-password=<token>`), as
 * {@link takeAccountLink} reads them from the page's address.
 */
export interface AccountLink {
  action: 'reset-password' | 'verify-email' | 'confirm-email' | 'undo-email-change';
  token: string;
}

export interface RotorSession {
  id: string;
  deviceName: string | null;
  userAgent: string | null;
  ip: string | null;
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  current: boolean;
  /** The session is bound to its client's key (DPoP, issue 18): its tokens need the key. */
  dpopBound: boolean;
}

/** Which page of a list to read: `limit` 1–100 (the server's default is 50), `cursor` from the previous page. */
export interface PageOptions {
  limit?: number;
  /** The `nextCursor` of the previous page; omit (or null) for the first page. */
  cursor?: string | null;
}

/** One page of `GET /auth/sessions`; `nextCursor` is null on the last page. */
export interface RotorSessionPage {
  sessions: RotorSession[];
  nextCursor: string | null;
}

/** What the client knows about the signed-in session. Times are local milliseconds. */
export interface AuthState {
  user: RotorUser;
  sessionId: string;
  /**
   * `DPoP` when the session is bound to this client's key (`dpop`; RFC 9449): its tokens are
   * useless without the key. `Bearer` otherwise.
   */
  tokenType: TokenType;
  /** When the access token expires, by this device's clock (computed from `expiresIn`). */
  accessExpiresAt: number;
  /** When the session ends if it is not refreshed. */
  refreshExpiresAt: number;
}

/**
 * What {@link RotorClient.subscribe} hears. A silent refresh of a refused request is, in order:
 * `token-refused` (the `401`), `refreshed` (trigger `token_expired`), `retrying` (the request again).
 */
export type RotorEvent =
  | { type: 'signed-in'; state: AuthState }
  | { type: 'refreshed'; state: AuthState; trigger: RefreshTrigger }
  | { type: 'signed-out'; reason: SignOutReason; detail?: SessionEndReason }
  /** A `401 token_expired` or `invalid_token` for a request: a refresh (or a newer token) follows. */
  | ({ type: 'token-refused' } & TokenRefusal)
  /** The refused request is sent once more, with the current access token. */
  | { type: 'retrying'; method: string; url: string };

/** Keeps the refresh token in `body` delivery: a file for a CLI, secure storage on mobile. */
export interface TokenStorage {
  get(): Promise<string | null> | string | null;
  set(refreshToken: string): Promise<void> | void;
  delete(): Promise<void> | void;
}

export interface RotorClientOptions {
  /** Where Rotor is, e.g. `https://auth.example.com`; `''` for the page's own origin. */
  baseUrl: string;
  /** Default `split`: access token in memory, refresh token in an HttpOnly cookie. */
  delivery?: Delivery;
  /** Where `body` delivery keeps the refresh token (default: memory only). */
  storage?: TokenStorage;
  /**
   * Where `body` delivery keeps the device token a login leaves (default: memory only). Sent with
   * the next login, it lets this device sign in while strangers' wrong guesses have locked the
   * account (OWASP device cookies). Keep it across restarts beside the refresh token: it is no
   * credential on its own. Browsers need nothing: it is an HttpOnly cookie there.
   */
  deviceStorage?: TokenStorage;
  /** Refresh shortly before the access token expires (default true). */
  autoRefresh?: boolean;
  /** Seconds before expiry to refresh; default a fifth of the lifetime, 1 s to 60 s. */
  refreshMargin?: number;
  /** Share refreshes and sign-outs between tabs (default: on in browsers). */
  crossTab?: boolean;
  /** Longest wait for another tab's refresh before refreshing anyway (default 10 s). */
  lockTimeoutMs?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** The local clock (tests). */
  now?: () => number;
  /**
   * Sender-constrained sessions (DPoP, RFC 9449): `true` signs a proof with this client's own key
   * for the login, every refresh and every request it authenticates, so that the session's tokens
   * are useless without the key. In browsers the key is non-extractable and kept in IndexedDB (a
   * reload keeps it; tabs share it); in Node, pass `fileDpopKey(path)` of `@rotor/client/node` to
   * keep it across restarts (else it lives in memory). Not with `cookies` delivery.
   * @example createRotorClient({ baseUrl, dpop: true })
   */
  dpop?: boolean | DpopKeyStore;
}

/** The scheme a session's access token is sent with: `DPoP` when bound to the client's key. */
export type TokenType = 'Bearer' | 'DPoP';

/**
 * Where `dpop` keeps its key pair (an ES256 `CryptoKeyPair`): by default IndexedDB in browsers
 * (non-extractable), memory elsewhere; `fileDpopKey(path)` of `@rotor/client/node` for a file.
 */
export interface DpopKeyStore {
  /** The key pair, made and kept on the first call; the client calls it once. */
  load(): Promise<CryptoKeyPair>;
}

/** The wire shape of a token response. */
export interface TokenResponse {
  tokenType: TokenType;
  accessToken?: string;
  expiresIn: number;
  refreshToken?: string;
  refreshExpiresIn: number;
  sessionId: string;
  user: RotorUser;
  /** After a login in `body` delivery: this device's new device token. */
  deviceToken?: string;
}
