import {
  checkLoginInput,
  checkNewPassword,
  registerUser,
  setPassword,
  verifyPassword,
  type AccountContext,
} from './accounts/accounts.js';
import type { Clock } from './clock.js';
import type { Delivery, RotorConfig } from './config/load-config.js';
import { normalizeEmail } from './accounts/email.js';
import { AuditLog } from './audit/audit-log.js';
import { RotorError } from './errors.js';
import type { Page, PageRequest } from './lib/paging.js';
import { databaseLimitStore } from './limits/database-store.js';
import { RateLimiter } from './limits/limiter.js';
import { MemoryLimitStore } from './limits/memory-store.js';
import { addressSubject } from './limits/address-subject.js';
import { verifyWithinBudget } from './limits/password-attempts.js';
import { RedisLimitStore } from './limits/redis-store.js';
import { PasswordHasher } from './passwords/passwords.js';
import type { ClientInfo, SessionContext } from './sessions/context.js';
import {
  endSession,
  endSessionByRefreshToken,
  revokeAllUserSessions,
  revokeUserSession,
} from './sessions/end-sessions.js';
import { listUserSessions } from './sessions/list-sessions.js';
import { pruneExpired, type PruneReport } from './sessions/prune.js';
import { rotateRefreshToken } from './sessions/rotate-refresh-token.js';
import { SessionStateCache } from './sessions/session-cache.js';
import { assertSessionActive, sessionEndsAt } from './sessions/session-state.js';
import { startSession, type IssuedSession } from './sessions/start-session.js';
import { databaseClock } from './store/database-clock.js';
import { openStore } from './store/open-store.js';
import type { EventRow, SessionRow, Store, UserRow } from './store/store.js';
import { AccessTokens, type AccessTokenClaims } from './tokens/access-token.js';
import { DeviceTokens } from './tokens/device-token.js';
import { hashRefreshToken, isRefreshTokenShape } from './tokens/refresh-token.js';
import { loadHmacKey, signingKeySeal } from './tokens/secrets.js';
import { KeyRing } from './tokens/signing-keys.js';

/** What a successful login or refresh hands out; the HTTP layer shapes it per delivery. */
export interface TokenGrant {
  user: UserRow;
  session: SessionRow;
  accessToken: string;
  /** Seconds since the epoch. */
  accessExpiresAt: number;
  refreshToken: string;
  /** Seconds since the epoch. */
  refreshExpiresAt: number;
  /** False when a racer inside the grace window got the successor another request created. */
  rotated: boolean;
  /** After a login: a new device token for this client (OWASP device cookies; device-token.ts). */
  deviceToken?: string;
}

/** The caller of a protected request: a valid access token whose session is still active. */
export interface Principal {
  claims: AccessTokenClaims;
  session: SessionRow;
  user: UserRow;
}

/** Rotor's engine: the session rules wired to one store, clock and key ring. No global state. */
export interface Rotor {
  readonly config: RotorConfig;
  readonly store: Store;
  readonly clock: Clock;
  readonly keys: KeyRing;
  readonly accessTokens: AccessTokens;
  readonly sessions: SessionContext;
  readonly accounts: AccountContext;
  register(
    input: { email: string; password: string; name?: string | null } & Partial<ClientInfo>,
  ): Promise<UserRow>;
  login(
    input: {
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
    } & ClientInfo,
  ): Promise<TokenGrant>;
  refresh(
    input: {
      refreshToken: string;
      delivery?: Delivery | undefined;
      /** The OAuth client the token's session was issued to; unset, a session of `/auth`. */
      clientId?: string;
      /** Judges the session's stored delivery before anything is written (see `rotateRefreshToken`). */
      checkDelivery?: (stored: string) => void;
    } & ClientInfo,
  ): Promise<TokenGrant>;
  /** Resolves a refresh token to its session and user, without changing anything (introspection). */
  inspectRefreshToken(
    refreshToken: string,
  ): Promise<{ session: SessionRow; user: UserRow; expiresAt: number } | null>;
  /** Verifies an access token and checks that its session is still active (seed 001's KeyStore check). */
  authenticate(accessToken: string): Promise<Principal>;
  /**
   * Changes the password of the caller's account and ends every other session of it; returns how
   * many ended. A wrong current password counts as a failed login of the account.
   */
  changePassword(input: {
    principal: Principal;
    currentPassword: string;
    newPassword: string;
    client?: Partial<ClientInfo>;
  }): Promise<number>;
  /**
   * Ends the session of any of its refresh tokens, rotated ones included (RFC 7009 §2.1 lets the
   * whole grant go); `clientId` is the OAuth client it must have been issued to (`null`, the
   * default: a session of `/auth`). `client`, where given, is where the request came from, for the
   * audit log. Tells whether a session ended.
   */
  logoutWithRefreshToken(
    refreshToken: string,
    client?: Partial<ClientInfo>,
    clientId?: string | null,
  ): Promise<boolean>;
  logoutSession(sessionId: string, client?: Partial<ClientInfo>): Promise<boolean>;
  /**
   * Ends every session of the user; `reason` is what the sessions' holders are told
   * (`details.reason`): `logout_all` when the user asked, `admin` when an operator did (the CLI).
   */
  logoutAll(
    userId: string,
    client?: Partial<ClientInfo>,
    reason?: 'logout_all' | 'admin',
  ): Promise<number>;
  /** Revokes one of the user's sessions; false when it was revoked already (`not_found` if none). */
  revokeSession(userId: string, sessionId: string, client?: Partial<ClientInfo>): Promise<boolean>;
  /** A page of the user's live sessions, newest first (`limit` 1–100, default 50). */
  listSessions(userId: string, page?: PageRequest): Promise<Page<SessionRow>>;
  /** A page of the user's security events, newest first (the audit log; `limit` 1–100, default 50). */
  listEvents(userId: string, page?: PageRequest): Promise<Page<EventRow>>;
  /** Deletes ended sessions, old rotated tokens, rate-limit states and events (see `pruneExpired`). */
  prune(): Promise<PruneReport>;
  close(): Promise<void>;
  // used by http/cli (issue 16)
  /** Resolves when the database answers; rejects with the driver's error otherwise (readiness). */
  ping(): Promise<void>;
  /** Sessions neither revoked nor expired now, counted in the database (metrics; slow on millions). */
  countActiveSessions(): Promise<number>;
  /** The account with this email (normalized first), or undefined (the CLI's user commands). */
  findUserByEmail(email: string): Promise<UserRow | undefined>;
}

export interface CreateRotorOptions {
  /** A store to use instead of opening `config.databaseUrl`; the caller keeps ownership. */
  store?: Store;
  clock?: Clock;
  /** Told about database connections that fail while idle (PostgreSQL restarts). */
  onIdleError?: (error: Error) => void;
  /**
   * Hold an SQLite file for this engine's process (default true): a second engine on the same file
   * is refused at start with a message (one server process per SQLite file; issue 15, item 7).
   * The CLI's short commands beside a running server pass false.
   */
  sqliteServerLock?: boolean;
}

/**
 * Builds the engine: opens (and migrates) the store, loads or creates the signing key and the HMAC
 * secret.
 * @example const rotor = await createRotor(loadConfig());
 */
export async function createRotor(
  config: RotorConfig,
  options: CreateRotorOptions = {},
): Promise<Rotor> {
  const ownsStore = options.store === undefined;
  const store =
    options.store ??
    (await openStore(config.databaseUrl, {
      poolSize: config.databasePoolSize,
      serverLock: options.sqliteServerLock ?? true,
      ...(options.onIdleError && { onIdleError: options.onIdleError }),
    }));
  let clock: Clock | undefined = options.clock;
  let stopClock = () => {};
  try {
    if (!clock) {
      // Every instance on one time: the database's (store/database-clock.ts).
      const shared = await databaseClock(store);
      clock = shared;
      stopClock = () => shared.close();
    }
    const keys = await KeyRing.load(store, clock, signingKeySeal(config.secret));
    const hmacKey = await loadHmacKey(store, clock, config.secret);
    return assemble(config, store, clock, keys, hmacKey, {
      ownsStore,
      injectedClock: options.clock !== undefined,
      stopClock,
    });
  } catch (error) {
    stopClock();
    if (ownsStore) await store.close();
    throw error;
  }
}

function assemble(
  config: RotorConfig,
  store: Store,
  clock: Clock,
  keys: KeyRing,
  hmacKey: Uint8Array,
  {
    ownsStore,
    injectedClock,
    stopClock,
  }: {
    ownsStore: boolean;
    injectedClock: boolean;
    stopClock: () => void;
  },
): Rotor {
  const sessions: SessionContext = {
    store,
    clock,
    hmacKey,
    // An injected clock is every clock, the database's included: tests and simulations run on
    // one time. Otherwise the database's clock where it has one (PostgreSQL), for every instance.
    decisionTime: injectedClock
      ? async () => clock.now()
      : async (tx) => (await tx.databaseNow()) ?? clock.now(),
    policy: {
      refreshTtl: config.refreshTtl,
      sessionMaxAge: config.sessionMaxAge,
      refreshGrace: config.refreshGrace,
      maxSessions: config.maxSessions,
    },
  };
  const deviceTokens = new DeviceTokens(hmacKey);
  const accounts: AccountContext = { store, clock, passwords: new PasswordHasher() };
  const accessTokens = new AccessTokens({
    keys,
    issuer: config.issuer,
    audience: config.audience,
    now: () => Math.floor(clock.now() / 1000),
  });

  // Login and register limits are shared by every instance through the database, or Redis when
  // `ROTOR_REDIS_URL` is set; refresh limits guard against runaway clients and stay in this
  // process (no write per refresh).
  const rules = config.rateLimits;
  const redisLimits =
    config.rateLimit && config.redisUrl ? new RedisLimitStore(config.redisUrl) : undefined;
  const limits = {
    shared: new RateLimiter(redisLimits ?? databaseLimitStore(store), clock, config.rateLimit),
    local: new RateLimiter(new MemoryLimitStore(), clock, config.rateLimit),
  };

  const audit = new AuditLog(store, clock);
  // The session-state check of every authenticated request, cached while the store vouches for it.
  const sessionStates = new SessionStateCache(store, { onKeys: () => keys.markStale() });
  const readSessionState = (id: string) => store.findSessionWithUser(id);

  /** Signs the access token of a grant; it never outlives its session (DESIGN.md, 4). */
  async function grant(
    user: UserRow,
    issued: IssuedSession & { rotated?: boolean },
  ): Promise<TokenGrant> {
    const nowSeconds = Math.floor(clock.now() / 1000);
    const accessExpiresAt = Math.min(
      nowSeconds + config.accessTtl,
      Math.floor(sessionEndsAt(issued.session) / 1000),
    );
    const accessToken = await accessTokens.sign({
      sub: user.id,
      sid: issued.session.id,
      exp: accessExpiresAt,
    });
    return {
      user,
      session: issued.session,
      accessToken,
      accessExpiresAt,
      refreshToken: issued.refreshToken,
      refreshExpiresAt: Math.floor(issued.refreshExpiresAt / 1000),
      rotated: issued.rotated ?? true,
    };
  }

  return {
    config,
    store,
    clock,
    keys,
    accessTokens,
    sessions,
    accounts,
    async register(input) {
      // Sign-ups over HTTP count per address, before the hashing; the CLI (no address) is the
      // operator.
      if (input.ip) await limits.shared.reserve(rules.register, addressSubject(input.ip));
      return registerUser(accounts, input);
    },
    async login(input) {
      // Before anything else: input that is not plain text names no account (lib/plain-text.ts).
      checkLoginInput(input);
      const email = normalizeEmail(input.email);
      const address = limitAddress(input.ip);
      const nowSeconds = Math.floor(clock.now() / 1000);
      const user = await store.findUserByEmail(email);
      let device: string | undefined;
      const candidates =
        typeof input.deviceToken === 'string' ? [input.deviceToken] : input.deviceToken;
      for (const token of user ? (candidates ?? []) : []) {
        device = await deviceTokens.nonceFor(token, user!, nowSeconds);
        if (device !== undefined) break;
      }
      // Reserved before the password is verified: a spent budget costs no hashing, and attempts
      // in flight cannot all pass a check none of them has counted in yet (issue 13, item 1). The
      // right password spends no budget: honest users behind one address never add up.
      const subjects = { account: device === undefined ? email : undefined, device, address };
      const verified = await verifyWithinBudget(limits.shared, rules, subjects, () =>
        verifyPassword(accounts, user, input.password),
      );
      if (!user || !verified) {
        await audit.record({
          type: 'login_failed',
          userId: user?.id ?? null,
          ip: input.ip,
          userAgent: input.userAgent,
        });
        throw new RotorError('invalid_credentials', 'The email or password is incorrect.');
      }
      const issued = await startSession(sessions, {
        user,
        deviceName: input.deviceName,
        delivery: input.delivery,
        clientId: input.clientId ?? null,
        ip: input.ip,
        userAgent: input.userAgent,
        started: async (tx, session, evicted) => {
          for (const sessionId of evicted) {
            await audit.record(
              { type: 'session_evicted', userId: user.id, sessionId, ip: input.ip },
              tx,
            );
          }
          await audit.record(
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
      const granted = await grant(user, issued);
      // At the epoch the session was created under (startSession checked it had not moved).
      granted.deviceToken = await deviceTokens.issue(user, nowSeconds);
      return granted;
    },
    async refresh(input) {
      let issued: Awaited<ReturnType<typeof rotateRefreshToken>>;
      try {
        issued = await rotateRefreshToken(sessions, {
          ...input,
          // Refused before anything changes, so a limited client keeps its token and retries
          // later. Racers inside the grace window are counted too: each gets a new access token.
          admit: async (session) => {
            await limits.local.reserve(rules.refreshSession, session.id);
          },
          // Recorded when the session moves (another address or user agent than its last use),
          // in the rotation's transaction: an event per rotation cost a fifth of the refresh
          // throughput (bench row 3) and buries the moves that matter among thousands of rows.
          rotated: async (tx, session) => {
            if (session.ip === input.ip && session.user_agent === input.userAgent) return;
            await audit.record(
              {
                type: 'refresh',
                userId: session.user_id,
                sessionId: session.id,
                ip: input.ip,
                userAgent: input.userAgent,
              },
              tx,
            );
          },
          // In the transaction that revokes the session: no revocation without its record.
          reused: (tx, session) =>
            audit.record(
              {
                type: 'reuse_detected',
                userId: session.user_id,
                sessionId: session.id,
                ip: input.ip,
                userAgent: input.userAgent,
              },
              tx,
            ),
        });
      } catch (error) {
        if (error instanceof RotorError && error.code === 'invalid_token') {
          // Only look-ups of unknown tokens count per address (issue 13, item 7): a client behind
          // a guessing neighbour still refreshes its own, valid token.
          await limits.local.reserve(rules.refreshAddress, limitAddress(input.ip));
        }
        throw error;
      }

      return grant(issued.user, issued);
    },
    async inspectRefreshToken(refreshToken) {
      if (!isRefreshTokenShape(refreshToken)) return null;
      const token = await store.findTokenByHash(hashRefreshToken(refreshToken));
      const session = token && (await store.findSession(token.session_id));
      const now = clock.now();
      if (!token || !session || token.rotated_at !== null || token.expires_at <= now) return null;
      if (session.revoked_at !== null || sessionEndsAt(session) <= now) return null;
      const user = await store.findUserById(session.user_id);
      return user ? { session, user, expiresAt: token.expires_at } : null;
    },
    async authenticate(accessToken) {
      // Changes made elsewhere first: among them, perhaps, the key that signed this token withdrawn.
      const current = sessionStates.sync();
      const claims = await accessTokens.verify(accessToken);
      let state = await sessionStates.get(claims.sid, readSessionState, current);
      if (state && sessionEndsAt(state.session) <= clock.now()) {
        // Another instance's refresh may have extended the session without telling this cache
        // (only revocations notify): read it again before calling it expired.
        sessionStates.session(claims.sid);
        state = await sessionStates.get(claims.sid, readSessionState);
      }
      if (!state || state.session.user_id !== claims.sub) {
        throw new RotorError('invalid_token', 'The access token names no session of this user.');
      }
      assertSessionActive(state.session, clock.now());
      return { claims, session: state.session, user: state.user };
    },
    async changePassword({ principal, currentPassword, newPassword, client = {} }) {
      // Checked before anything is spent: a new password that cannot be set costs no guess.
      checkNewPassword(currentPassword, newPassword);
      const user = await store.findUserById(principal.user.id);
      // The same budgets as logins: a stolen access token must not open a password oracle.
      const subjects = { account: principal.user.email, address: limitAddress(client.ip) };
      const verified = await verifyWithinBudget(limits.shared, rules, subjects, async () =>
        user === undefined ? false : verifyPassword(accounts, user, currentPassword),
      );
      if (!user || !verified) {
        throw new RotorError('invalid_credentials', 'The current password is incorrect.');
      }
      return setPassword(accounts, {
        userId: user.id,
        sessionId: principal.session.id,
        verifiedHash: user.password_hash,
        newPassword,
        changed: (tx) =>
          audit.record(
            {
              type: 'password_changed',
              userId: user.id,
              sessionId: principal.session.id,
              ...client,
            },
            tx,
          ),
      });
    },
    // Every revocation's audit event is written in the revocation's transaction (issue 15,
    // item 5); only a revocation that happened is an event: a repeated one changed nothing.
    logoutWithRefreshToken: (refreshToken, client = {}, clientId = null) =>
      endSessionByRefreshToken(sessions, refreshToken, clientId, (tx, session) =>
        audit.record(
          { type: 'logout', userId: session.user_id, sessionId: session.id, ...client },
          tx,
        ),
      ),
    logoutSession: (sessionId, client = {}) =>
      endSession(sessions, sessionId, (tx, session) =>
        audit.record({ type: 'logout', userId: session.user_id, sessionId, ...client }, tx),
      ),
    logoutAll: (userId, client = {}, reason = 'logout_all') =>
      revokeAllUserSessions(sessions, userId, reason, (tx) =>
        audit.record({ type: 'logout_all', userId, ...client }, tx),
      ),
    revokeSession: (userId, sessionId, client = {}) =>
      revokeUserSession(sessions, userId, sessionId, (tx) =>
        audit.record({ type: 'session_revoked', userId, sessionId, ...client }, tx),
      ),
    listSessions: (userId, page) => listUserSessions(sessions, userId, page),
    listEvents: (userId, page) => audit.list(userId, page),
    prune: () => pruneExpired(store, clock, config.retention, config.auditRetention),
    async close() {
      stopClock();
      await sessionStates.close();
      await redisLimits?.close();
      if (ownsStore) await store.close();
    },
    // used by http/cli (issue 16)
    ping: () => store.ping(),
    countActiveSessions: () => store.countActiveSessions(clock.now()),
    findUserByEmail: (email) => store.findUserByEmail(normalizeEmail(email)),
  };
}

/**
 * The subject of address limits: an IPv6 client counts by its /64 (address-subject.ts); callers
 * without an address (the CLI, an embedding app that passes none) share one subject.
 */
function limitAddress(ip: string | null | undefined): string {
  return ip ? addressSubject(ip) : 'unknown';
}
