import {
  changePassword,
  verifyCredentials,
  registerUser,
  type AccountContext,
} from './accounts/accounts.js';
import { systemClock, type Clock } from './clock.js';
import type { Delivery, RotorConfig } from './config/load-config.js';
import { normalizeEmail } from './accounts/email.js';
import { AuditLog } from './audit/audit-log.js';
import { RotorError } from './errors.js';
import { databaseLimitStore } from './limits/database-store.js';
import { RateLimiter } from './limits/limiter.js';
import { MemoryLimitStore } from './limits/memory-store.js';
import { RedisLimitStore } from './limits/redis-store.js';
import { PasswordHasher } from './passwords/passwords.js';
import type { ClientInfo, SessionContext } from './sessions/context.js';
import {
  endSession,
  endSessionByRefreshToken,
  revokeAllUserSessions,
  revokeUserSession,
} from './sessions/end-sessions.js';
import { pruneExpired, type PruneReport } from './sessions/prune.js';
import { rotateRefreshToken } from './sessions/rotate-refresh-token.js';
import { SessionStateCache } from './sessions/session-cache.js';
import { assertSessionActive, sessionEndsAt } from './sessions/session-state.js';
import { startSession, type IssuedSession } from './sessions/start-session.js';
import { openStore } from './store/open-store.js';
import type { EventRow, SessionRow, Store, UserRow } from './store/store.js';
import { AccessTokens, type AccessTokenClaims } from './tokens/access-token.js';
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
  /** `client`, where given, is where the request came from, for the audit log. */
  logoutWithRefreshToken(refreshToken: string, client?: Partial<ClientInfo>): Promise<boolean>;
  logoutSession(sessionId: string, client?: Partial<ClientInfo>): Promise<boolean>;
  logoutAll(userId: string, client?: Partial<ClientInfo>): Promise<number>;
  revokeSession(userId: string, sessionId: string, client?: Partial<ClientInfo>): Promise<void>;
  listSessions(userId: string): Promise<SessionRow[]>;
  /** The user's most recent security events, newest first (the audit log). */
  listEvents(userId: string, limit?: number): Promise<EventRow[]>;
  /** Deletes ended sessions, old rotated tokens, rate-limit states and events (see `pruneExpired`). */
  prune(): Promise<PruneReport>;
  close(): Promise<void>;
}

export interface CreateRotorOptions {
  /** A store to use instead of opening `config.databaseUrl`; the caller keeps ownership. */
  store?: Store;
  clock?: Clock;
  /** Told about database connections that fail while idle (PostgreSQL restarts). */
  onIdleError?: (error: Error) => void;
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
  const clock = options.clock ?? systemClock;
  const ownsStore = options.store === undefined;
  const store =
    options.store ??
    (await openStore(config.databaseUrl, {
      poolSize: config.databasePoolSize,
      ...(options.onIdleError && { onIdleError: options.onIdleError }),
    }));
  try {
    const keys = await KeyRing.load(store, clock, signingKeySeal(config.secret));
    const hmacKey = await loadHmacKey(store, clock, config.secret);
    return assemble(config, store, clock, keys, hmacKey, ownsStore);
  } catch (error) {
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
  ownsStore: boolean,
): Rotor {
  const sessions: SessionContext = {
    store,
    clock,
    hmacKey,
    policy: {
      refreshTtl: config.refreshTtl,
      sessionMaxAge: config.sessionMaxAge,
      refreshGrace: config.refreshGrace,
    },
  };
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
  /** The session a refresh token belongs to, whatever its state (for the audit log). */
  async function sessionOfRefreshToken(refreshToken: string): Promise<SessionRow | undefined> {
    if (!isRefreshTokenShape(refreshToken)) return undefined;
    const token = await store.findTokenByHash(hashRefreshToken(refreshToken));
    return token && (await store.findSession(token.session_id));
  }

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
      // Sign-ups over HTTP count per address; the CLI (no address) is the operator.
      if (input.ip) await limits.shared.consume(rules.register, input.ip);
      return registerUser(accounts, input);
    },
    async login(input) {
      // Checked before the password is: a blocked account or address costs no hashing.
      const account = normalizeEmail(input.email);
      const address = input.ip ?? 'unknown';
      await limits.shared.check(rules.loginAccount, account);
      await limits.shared.check(rules.loginAddress, address);
      let user: UserRow;
      try {
        user = await verifyCredentials(accounts, input.email, input.password);
      } catch (error) {
        if (error instanceof RotorError && error.code === 'invalid_credentials') {
          await limits.shared.fail(rules.loginAccount, account);
          await limits.shared.fail(rules.loginAddress, address);
          const known = await store.findUserByEmail(account);
          await audit.record({
            type: 'login_failed',
            userId: known?.id ?? null,
            ip: input.ip,
            userAgent: input.userAgent,
          });
        }
        throw error;
      }
      await limits.shared.reset(rules.loginAccount, account);
      const issued = await startSession(sessions, {
        userId: user.id,
        deviceName: input.deviceName,
        delivery: input.delivery,
        clientId: input.clientId ?? null,
        ip: input.ip,
        userAgent: input.userAgent,
      });
      await audit.record({
        type: 'login_succeeded',
        userId: user.id,
        sessionId: issued.session.id,
        ip: input.ip,
        userAgent: input.userAgent,
      });
      return grant(user, issued);
    },
    async refresh(input) {
      const address = input.ip ?? 'unknown';
      await limits.local.check(rules.refreshAddress, address);
      let issued: Awaited<ReturnType<typeof rotateRefreshToken>>;
      try {
        issued = await rotateRefreshToken(sessions, {
          ...input,
          // Refused before the rotation, so a limited client keeps its token and retries later.
          admit: (session) => limits.local.consume(rules.refreshSession, session.id),
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
        });
      } catch (error) {
        if (error instanceof RotorError && error.code === 'invalid_token') {
          await limits.local.fail(rules.refreshAddress, address);
        }
        if (error instanceof RotorError && error.code === 'refresh_token_reused') {
          const session = await sessionOfRefreshToken(input.refreshToken);
          await audit.record({
            type: 'reuse_detected',
            userId: session?.user_id ?? null,
            sessionId: session?.id,
            ip: input.ip,
            userAgent: input.userAgent,
          });
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
      // The same budget as logins: a stolen access token must not open a password oracle.
      const account = principal.user.email;
      await limits.shared.check(rules.loginAccount, account);
      try {
        const ended = await changePassword(accounts, {
          userId: principal.user.id,
          sessionId: principal.session.id,
          currentPassword,
          newPassword,
        });
        await audit.record({
          type: 'password_changed',
          userId: principal.user.id,
          sessionId: principal.session.id,
          ...client,
        });
        return ended;
      } catch (error) {
        if (error instanceof RotorError && error.code === 'invalid_credentials') {
          await limits.shared.fail(rules.loginAccount, account);
        }
        throw error;
      }
    },
    async logoutWithRefreshToken(refreshToken, client = {}) {
      const ended = await endSessionByRefreshToken(sessions, refreshToken);
      const session = ended ? await sessionOfRefreshToken(refreshToken) : undefined;
      if (session) {
        await audit.record({
          type: 'logout',
          userId: session.user_id,
          sessionId: session.id,
          ...client,
        });
      }
      return ended;
    },
    async logoutSession(sessionId, client = {}) {
      const ended = await endSession(sessions, sessionId);
      const session = ended ? await store.findSession(sessionId) : undefined;
      if (session) {
        await audit.record({ type: 'logout', userId: session.user_id, sessionId, ...client });
      }
      return ended;
    },
    async logoutAll(userId, client = {}) {
      const count = await revokeAllUserSessions(sessions, userId);
      await audit.record({ type: 'logout_all', userId, ...client });
      return count;
    },
    async revokeSession(userId, sessionId, client = {}) {
      await revokeUserSession(sessions, userId, sessionId);
      await audit.record({ type: 'session_revoked', userId, sessionId, ...client });
    },
    listSessions: (userId) => store.listActiveSessions(userId, clock.now()),
    listEvents: (userId, limit) => audit.list(userId, limit),
    prune: () => pruneExpired(store, clock, config.retention, config.auditRetention),
    async close() {
      await sessionStates.close();
      await redisLimits?.close();
      if (ownsStore) await store.close();
    },
  };
}
