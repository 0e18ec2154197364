import { createDpopSigner, indexedDbDpopKeys, memoryDpopKeys, type DpopAnswer } from './dpop.js';
import { readError, RotorClientError, shouldRetry } from './errors.js';
import { memoryStorage } from './storage.js';
import { createTabSync, type TabMessage, type TabSync } from './tab-sync.js';
import type {
  AccountRecovery,
  AuthState,
  Delivery,
  PageOptions,
  RefreshTrigger,
  RotorClientOptions,
  RotorEvent,
  RotorSession,
  RotorSessionPage,
  RotorUser,
  SessionEndReason,
  SignOutReason,
  TokenRefusal,
  TokenResponse,
  TokenType,
} from './types.js';

/**
 * The access token one request is sent with, and what to do when it is refused: see
 * {@link RotorClient.authorize}.
 */
export interface RequestAuth {
  /** The access token to send; null when signed out or in `cookies` delivery. */
  readonly token: string | null;
  /** The `Authorization` scheme: `DPoP` when the session is bound to this client's key. */
  readonly scheme: TokenType;
  /**
   * The headers of a request for `method` and `url`: `Authorization` and, for a bound session, a
   * fresh `DPoP` proof (made for that request and token). Empty without a token.
   */
  headers(method: string, url: string): Promise<Record<string, string>>;
  /**
   * Give it each answer to a request sent with {@link headers} (and the answer's error code, if
   * any): it keeps the server's `DPoP-Nonce`. True when the answer is `use_dpop_nonce`: send the
   * request once more, with new headers.
   */
  answered(url: string, answer: DpopAnswer, code?: unknown): boolean;
  /**
   * Call on a `401 token_expired` or `invalid_token` for this request. Refreshes only if no new
   * token has arrived since the request was sent (here or from another tab); true when one retry
   * with the current token is worth making. Given the refusal, subscribers hear `token-refused`,
   * the refresh's trigger is its code, and `retrying` follows when the answer is true.
   */
  refused(refusal?: TokenRefusal): Promise<boolean>;
}

/** The Rotor client: see {@link createRotorClient}. */
export interface RotorClient {
  register(input: { email: string; password: string; name?: string }): Promise<RotorUser>;
  login(input: { email: string; password: string; deviceName?: string }): Promise<RotorUser>;
  /** At start: a new access token from the refresh cookie (or stored token). Null when signed out. */
  restore(): Promise<RotorUser | null>;
  logout(): Promise<void>;
  logoutAll(): Promise<void>;
  me(): Promise<{ user: RotorUser; session: RotorSession }>;
  // Account mails (issue 17; docs/api.md, "Account mails"). The requests answer the same whether
  // or not an account has the address; the links' tokens come from {@link takeAccountLink}.
  /** Mails a reset link (30 minutes) if an account has `email`. `rate_limited` when asked too often. */
  requestPasswordReset(email: string): Promise<void>;
  /**
   * Sets the new password from a reset link; every session of the account ends, this client's
   * included (it signs out here). Sign in with the new password next. `invalid_link`.
   */
  confirmPasswordReset(token: string, newPassword: string): Promise<AccountRecovery>;
  /** Mails the verification link again if an account has `email` and it is unproven. */
  requestEmailVerification(email: string): Promise<void>;
  /** Proves the address with its link's token; refreshes here so the next token says so. */
  verifyEmail(token: string): Promise<RotorUser>;
  /** Asks to move the signed-in account to `newEmail` (the password again); mails both addresses. */
  changeEmail(newEmail: string, password: string): Promise<void>;
  /** Makes the change from the new address's link. `invalid_link`, `email_taken`. */
  confirmEmailChange(token: string): Promise<RotorUser>;
  /** Undoes a change from the old address's link; every session ends (this one included). */
  undoEmailChange(token: string): Promise<AccountRecovery>;
  /**
   * A page of the user's live sessions, newest first; pass `nextCursor` back as `cursor` for the
   * next page (null on the last one).
   * @example const { sessions, nextCursor } = await rotor.listSessions({ limit: 20 });
   */
  listSessions(page?: PageOptions): Promise<RotorSessionPage>;
  revokeSession(id: string): Promise<void>;
  /** A valid access token (refreshed first when due), or null when signed out or in `cookies` delivery. */
  getAccessToken(): Promise<string | null>;
  /**
   * For adapters: as {@link getAccessToken}, remembering which token the request goes out with,
   * so that its `401` starts no second refresh when the token has been replaced meanwhile.
   * @example
   * const auth = await rotor.authorize();
   * let response = await callApi(await auth.headers('GET', url));
   * if (response.status === 401 && (await auth.refused()))
   *   response = await callApi(await (await rotor.authorize()).headers('GET', url));
   */
  authorize(): Promise<RequestAuth>;
  /** Refreshes now; concurrent calls share one refresh. False when the session is over. */
  refresh(): Promise<boolean>;
  /**
   * `fetch` with the access token (and a DPoP proof when bound); on `401 token_expired` or
   * `invalid_token`, refreshed (unless a newer token has arrived since the request was sent) and
   * retried once; on `use_dpop_nonce`, sent once more with the server's nonce.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Turns refreshing shortly before expiry on or off (off: refresh only when a call needs it). */
  setAutoRefresh(on: boolean): void;
  /**
   * Tells `listener` about sign-in, refresh (and what started it), sign-out (and why), and a
   * refused request's refresh and retry; returns the unsubscribe function.
   * @example rotor.subscribe((e) => e.type === 'signed-out' && console.log(e.reason, e.detail));
   */
  subscribe(listener: (event: RotorEvent) => void): () => void;
  /** The current session, or null when signed out. */
  readonly state: AuthState | null;
  /** Stops timers and the tab channel. */
  close(): void;
}

/** `?limit=…&cursor=…` for a paged list; empty for the server's defaults. */
function pageQuery({ limit, cursor }: PageOptions): string {
  const query = new URLSearchParams();
  if (limit !== undefined) query.set('limit', String(limit));
  if (cursor) query.set('cursor', cursor);
  const text = query.toString();
  return text ? `?${text}` : '';
}

/** How long a failed background refresh waits before the next try. */
function retryDelay(error: unknown): number {
  const seconds = error instanceof RotorClientError ? error.retryAfter : undefined;
  return seconds === undefined ? 5_000 : Math.max(1_000, seconds * 1_000);
}

const REASONS: Record<string, SignOutReason> = {
  session_revoked: 'revoked',
  refresh_token_reused: 'reuse_detected',
};

/** Why the server ended the session, when its refusal says (`details.reason`, docs/api.md). */
function endReason(error: RotorClientError): SessionEndReason | undefined {
  const reason = (error.details as { reason?: unknown } | undefined)?.reason;
  return typeof reason === 'string' ? (reason as SessionEndReason) : undefined;
}

/**
 * The error code of a refusal that carries a `DPoP-Nonce` (the only answers a proof is made again
 * for), read from a copy of its body; else undefined, without reading it.
 */
async function codeOf(response: Response): Promise<string | undefined> {
  return response.status >= 400 && response.headers.has('dpop-nonce')
    ? (await readError(response)).code
    : undefined;
}

/** The method and URL of a request, for the events of its refusal and retry, and its proof. */
function describeRequest(input: RequestInfo | URL, init: RequestInit) {
  const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  return { method, url: input instanceof Request ? input.url : String(input) };
}

/**
 * Creates a client for one Rotor server. The access token lives in memory only; the refresh token
 * in an HttpOnly cookie (`split`, `cookies`) or the given storage (`body`).
 * @example
 * const rotor = createRotorClient({ baseUrl: 'https://auth.example.com' });
 * await rotor.restore();                       // still signed in after a reload?
 * const response = await rotor.fetch('/api/notes');
 */
export function createRotorClient(options: RotorClientOptions): RotorClient {
  const baseUrl = options.baseUrl.replace(/\/$/, '');
  const delivery: Delivery = options.delivery ?? 'split';
  const storage = options.storage ?? memoryStorage();
  const deviceStorage = options.deviceStorage ?? memoryStorage();
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const now = options.now ?? Date.now;
  let autoRefresh = options.autoRefresh ?? true;
  const listeners = new Set<(event: RotorEvent) => void>();
  const channel = `rotor:${baseUrl || 'same-origin'}`;
  if (options.dpop && delivery === 'cookies') {
    throw new TypeError(
      "@rotor/client: `dpop` needs the access token in hand: use `split` or `body` delivery, not 'cookies'.",
    );
  }
  // One key per Rotor server: IndexedDB keeps a browser's across reloads, and its tabs share it.
  const signer = !options.dpop
    ? undefined
    : createDpopSigner(
        options.dpop !== true
          ? options.dpop
          : typeof indexedDB === 'object'
            ? indexedDbDpopKeys(channel)
            : memoryDpopKeys(),
      );

  let state: AuthState | null = null;
  let accessToken: string | null = null;
  /** Bumped on every new state, local or from another tab. */
  let version = 0;
  let refreshing: Promise<boolean> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const crossTab =
    options.crossTab ?? (typeof document !== 'undefined' && typeof BroadcastChannel === 'function');
  const tabs: TabSync | undefined = crossTab
    ? createTabSync(channel, options.lockTimeoutMs ?? 10_000, onTabMessage)
    : undefined;

  function emit(event: RotorEvent): void {
    for (const listener of listeners) listener(event);
  }

  /** Adopts a state, from a response here or from another tab. */
  function adopt(next: AuthState, token: string | null, trigger: RefreshTrigger): void {
    const wasSignedIn = state !== null;
    state = next;
    accessToken = token;
    version += 1;
    schedule();
    emit(
      wasSignedIn
        ? { type: 'refreshed', state: next, trigger }
        : { type: 'signed-in', state: next },
    );
  }

  async function apply(
    response: TokenResponse,
    trigger: RefreshTrigger = 'manual',
  ): Promise<AuthState> {
    // Lifetimes are counted from this device's clock when the answer arrived, so a device whose
    // clock is hours off still refreshes on time.
    const receivedAt = now();
    if (delivery === 'body' && response.refreshToken) await storage.set(response.refreshToken);
    const next: AuthState = {
      user: response.user,
      sessionId: response.sessionId,
      tokenType: response.tokenType === 'DPoP' ? 'DPoP' : 'Bearer',
      accessExpiresAt: receivedAt + response.expiresIn * 1000,
      refreshExpiresAt: receivedAt + response.refreshExpiresIn * 1000,
    };
    adopt(next, response.accessToken ?? null, trigger);
    tabs?.post({ type: 'state', state: next, accessToken });
    return next;
  }

  async function signOut(
    reason: SignOutReason,
    detail?: SessionEndReason,
    tell = true,
  ): Promise<void> {
    const wasSignedIn = state !== null;
    state = null;
    accessToken = null;
    version += 1;
    clearTimeout(timer);
    if (delivery === 'body') await storage.delete();
    if (tell) tabs?.post({ type: 'signed-out', reason, ...(detail && { detail }) });
    if (wasSignedIn) emit({ type: 'signed-out', reason, ...(detail && { detail }) });
  }

  function onTabMessage(message: TabMessage): void {
    if (message.type === 'state')
      adopt(message.state as AuthState, message.accessToken, 'other-tab');
    else
      void signOut(
        message.reason as SignOutReason,
        message.detail as SessionEndReason | undefined,
        false,
      );
  }

  function margin(current: AuthState): number {
    if (options.refreshMargin !== undefined) return options.refreshMargin * 1000;
    const lifetime = current.accessExpiresAt - now();
    return Math.min(60_000, Math.max(1_000, lifetime / 5));
  }

  function schedule(): void {
    clearTimeout(timer);
    if (!autoRefresh || !state) return;
    const delay = Math.max(0, state.accessExpiresAt - margin(state) - now());
    timer = setTimeout(() => {
      // A failure other than a dead session (network, 429, 503) tries again: when the server's
      // Retry-After says, else shortly. Retrying a 429 sooner only earns more 429s.
      refresh('scheduled').catch((error: unknown) => {
        timer = setTimeout(schedule, retryDelay(error));
        (timer as { unref?: () => void }).unref?.();
      });
    }, delay);
    (timer as { unref?: () => void }).unref?.();
  }

  function url(path: string): string {
    return `${baseUrl}${path}`;
  }

  /** A request to Rotor; with `prove`, a DPoP proof goes with it (the login and the refresh). */
  async function call(
    path: string,
    init: RequestInit = {},
    headers: Record<string, string> = {},
    prove = false,
  ): Promise<Response> {
    const target = url(path);
    const send = async () => {
      const proof = prove && signer && (await signer.proof(init.method ?? 'GET', target));
      try {
        return await doFetch(target, {
          ...init,
          credentials: 'include',
          headers: {
            ...(init.body !== undefined && { 'content-type': 'application/json' }),
            ...headers,
            ...(proof && { dpop: proof }),
          },
          signal: AbortSignal.timeout(15_000),
        });
      } catch (cause) {
        throw new RotorClientError('network_error', 0, `Cannot reach Rotor at ${target}`, {
          cause,
        });
      }
    };
    const response = await send();
    // RFC 9449 §8: asked for a nonce, the request goes once more with it; never in a loop.
    return prove && signer && signer.answered(target, response, await codeOf(response))
      ? send()
      : response;
  }

  async function refreshOnce(seen: number, trigger: RefreshTrigger): Promise<boolean> {
    // Another tab refreshed while this one waited for the lock: take its token, skip the network.
    if (version !== seen && state && state.accessExpiresAt - now() > 1_000) return true;
    let body: string | undefined;
    if (delivery === 'body') {
      const stored = await storage.get();
      if (!stored) {
        await signOut('expired');
        return false;
      }
      body = JSON.stringify({ refreshToken: stored });
    }
    const response = await call(
      '/auth/refresh',
      { method: 'POST', body },
      { 'token-delivery': delivery },
      true,
    );
    if (response.ok) {
      await apply((await response.json()) as TokenResponse, trigger);
      return true;
    }
    const error = await readError(response);
    // A proof refused (a clock far off, say) ends nothing on the server: keep the refresh token.
    if (response.status === 401 && error.code !== 'invalid_dpop_proof') {
      await signOut(REASONS[error.code] ?? 'expired', endReason(error));
      return false;
    }
    throw error;
  }

  /** Concurrent calls share one refresh; the first caller's trigger is the one reported. */
  function refresh(trigger: RefreshTrigger): Promise<boolean> {
    if (!refreshing) {
      const seen = version;
      const run = () => refreshOnce(seen, trigger);
      refreshing = (tabs ? tabs.withLock(run) : run()).finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  /**
   * What a request is sent with: the token, and the version of the state it came from. Its `401`
   * refreshes only while that version is still current; otherwise it refused a token already
   * replaced (by a refresh here or in another tab) and the current one is the answer. Issue 14:
   * parallel requests answered after the refresh their first 401 started refreshed a second time.
   * The version, not the token, so that `cookies` delivery (no token in hand) is covered too.
   */
  function stamp(): RequestAuth {
    const sentVersion = version;
    const token = delivery === 'cookies' ? null : accessToken;
    const scheme: TokenType = state?.tokenType === 'DPoP' ? 'DPoP' : 'Bearer';
    const bound = signer && token && scheme === 'DPoP' ? signer : undefined;
    return {
      token,
      scheme,
      async headers(method, target) {
        if (!token) return {};
        return {
          authorization: `${scheme} ${token}`,
          ...(bound && { dpop: await bound.proof(method, target, token) }),
        };
      },
      answered: (target, answer, code) => bound?.answered(target, answer, code) ?? false,
      async refused(refusal) {
        if (refusal) emit({ type: 'token-refused', ...refusal });
        const trigger: RefreshTrigger = refusal?.code ?? 'token_expired';
        const retry = version === sentVersion ? await refresh(trigger) : state !== null;
        if (retry && refusal) emit({ type: 'retrying', method: refusal.method, url: refusal.url });
        return retry;
      },
    };
  }

  async function authorize(): Promise<RequestAuth> {
    if (state && state.accessExpiresAt - now() <= margin(state)) await refresh('due');
    return stamp();
  }

  async function tokenResponse(response: Response): Promise<TokenResponse> {
    if (!response.ok) throw await readError(response);
    return (await response.json()) as TokenResponse;
  }

  async function authorizedFetch(
    input: RequestInfo | URL,
    init: RequestInit = {},
  ): Promise<Response> {
    if (state && autoRefresh && state.accessExpiresAt - now() <= 0)
      await refresh('due').catch(() => false);
    const copy = input instanceof Request ? input.clone() : input;
    const replayable =
      !(init.body instanceof ReadableStream) && !(input instanceof Request && input.body);
    const request = describeRequest(input, init);
    let sends = 0;
    /** Sends the request (again: a copy) with `auth`; once more if it asks for a DPoP nonce. */
    const send = async (auth: RequestAuth, nonced = false): Promise<Response> => {
      const target = sends++ === 0 ? input : copy instanceof Request ? copy.clone() : copy;
      const headers = new Headers(
        init.headers ?? (target instanceof Request ? target.headers : undefined),
      );
      for (const [name, value] of Object.entries(await auth.headers(request.method, request.url)))
        headers.set(name, value);
      const response = await doFetch(target, {
        ...init,
        headers,
        credentials: init.credentials ?? 'include',
      });
      return auth.answered(request.url, response, await codeOf(response)) && replayable && !nonced
        ? send(auth, true)
        : response;
    };
    const first = stamp();
    const response = await send(first);
    if (response.status !== 401 || !state) return response;
    const error = await readError(response);
    const { code } = error;
    if (code === 'session_revoked' || code === 'session_expired') {
      await signOut(code === 'session_revoked' ? 'revoked' : 'expired', endReason(error));
      return response;
    }
    if (!shouldRetry(response.status, code) || !replayable) return response;
    // At most one refresh and one retry, never a loop.
    const refusal = { code, ...request };
    return (await first.refused(refusal)) ? send(stamp()) : response;
  }

  /** A request without the access token (the account mails' routes); the answer's JSON. */
  async function post<T = void>(path: string, body: object): Promise<T> {
    const response = await call(path, { method: 'POST', body: JSON.stringify(body) });
    if (!response.ok) throw await readError(response);
    return (response.status === 202 ? undefined : await response.json()) as T;
  }

  async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await authorizedFetch(url(path), {
      ...init,
      headers: init.body !== undefined ? { 'content-type': 'application/json' } : {},
    });
    if (!response.ok) throw await readError(response);
    return (response.status === 204 ? undefined : await response.json()) as T;
  }

  return {
    get state() {
      return state;
    },
    async register(input) {
      const response = await call('/auth/register', {
        method: 'POST',
        body: JSON.stringify(input),
      });
      if (!response.ok) throw await readError(response);
      return ((await response.json()) as { user: RotorUser }).user;
    },
    async login(input) {
      const deviceToken = delivery === 'body' ? await deviceStorage.get() : null;
      const response = await call(
        '/auth/login',
        { method: 'POST', body: JSON.stringify(deviceToken ? { ...input, deviceToken } : input) },
        { 'token-delivery': delivery },
        true,
      );
      const tokens = await tokenResponse(response);
      if (tokens.deviceToken) await deviceStorage.set(tokens.deviceToken);
      return (await apply(tokens)).user;
    },
    async restore() {
      if (state) return state.user;
      if (delivery === 'body' && !(await storage.get())) return null;
      return (await refresh('manual')) ? ((state as AuthState | null)?.user ?? null) : null;
    },
    async logout() {
      const body = delivery === 'body' ? await storage.get() : null;
      const headers: Record<string, string> = accessToken
        ? { authorization: `Bearer ${accessToken}` }
        : {};
      try {
        // With a proof (DPoP sessions): a bound session ends only by its key's holder (issue 18).
        await call(
          '/auth/logout',
          { method: 'POST', body: body ? JSON.stringify({ refreshToken: body }) : undefined },
          headers,
          true,
        );
      } finally {
        await signOut('logout');
      }
    },
    async logoutAll() {
      try {
        await api('/auth/logout-all', { method: 'POST' });
      } finally {
        // Its own reason: the page can say "signed out everywhere", not a plain sign-out.
        await signOut('logout_all');
      }
    },
    me: () => api('/auth/me'),
    requestPasswordReset: (email) => post('/auth/password-reset', { email }),
    async confirmPasswordReset(token, newPassword) {
      const result = await post<AccountRecovery>('/auth/password-reset/confirm', {
        token,
        newPassword,
      });
      // Every session of the account ended: this client's tokens are dead too.
      if (state?.user.id === result.user.id) await signOut('revoked', 'password_reset');
      return result;
    },
    requestEmailVerification: (email) => post('/auth/verify-email/send', { email }),
    async verifyEmail(token) {
      const { user } = await post<{ user: RotorUser }>('/auth/verify-email', { token });
      // The next access token carries `email_verified: true`; get it now when signed in as them.
      if (state?.user.id === user.id) await refresh('manual');
      return user;
    },
    changeEmail: (newEmail, password) =>
      api('/auth/email', { method: 'POST', body: JSON.stringify({ newEmail, password }) }),
    async confirmEmailChange(token) {
      const { user } = await post<{ user: RotorUser }>('/auth/email/confirm', { token });
      if (state?.user.id === user.id) await refresh('manual');
      return user;
    },
    async undoEmailChange(token) {
      const result = await post<AccountRecovery>('/auth/email/undo', { token });
      if (state?.user.id === result.user.id) await signOut('revoked', 'email_change_undone');
      return result;
    },
    listSessions: (page = {}) => api<RotorSessionPage>(`/auth/sessions${pageQuery(page)}`),
    revokeSession: (id) => api(`/auth/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' }),
    getAccessToken: async () => (await authorize()).token,
    authorize,
    refresh: () => refresh('manual'),
    fetch: authorizedFetch,
    setAutoRefresh(on) {
      autoRefresh = on;
      schedule();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      clearTimeout(timer);
      tabs?.close();
    },
  };
}
