import type { AccountContext } from './accounts/accounts.js';
import { IssuedRefreshTokens } from './sessions/issued-refresh-tokens.js';
import { normalizeEmail } from './accounts/email.js';
import { AuditLog } from './audit/audit-log.js';
import type { Clock } from './clock.js';
import type { RotorConfig } from './config/load-config.js';
import { authenticate, authenticateFromCache, type Principal } from './engine/authenticate.js';
import { changePassword, type ChangePasswordInput } from './engine/change-password.js';
import type { EngineContext } from './engine/context.js';
import type { TokenGrant } from './engine/grant.js';
import { inspectRefreshToken, type RefreshTokenInfo } from './engine/inspect-refresh-token.js';
import { login, type LoginInput } from './engine/login.js';
import {
  logoutAll,
  logoutSession,
  logoutWithRefreshToken,
  revokeSession,
} from './engine/logout.js';
import { refresh, type RefreshInput } from './engine/refresh.js';
import { register, type RegisterInput } from './engine/register.js';
import { createUser, type CreateUserInput } from './engine/create-user.js';
import type { ClaimsHook } from './engine/custom-claims.js';
import {
  issueLoginTicket,
  redeemLoginTicket,
  type IssueLoginTicketInput,
  type RedeemLoginTicketInput,
} from './engine/login-tickets.js';
import { signIn, type SignInInput } from './engine/sign-in.js';
import { createAccountMail, senderName } from './engine/account-mail.js';
import {
  confirmEmailChange,
  requestEmailChange,
  undoEmailChange,
  type EmailChangeUndoResult,
  type RequestEmailChangeInput,
} from './engine/change-email.js';
import type { LinkInput } from './engine/account-links.js';
import type { MailRequestInput } from './engine/mail-request.js';
import {
  confirmPasswordReset,
  requestPasswordReset,
  type ConfirmPasswordResetInput,
  type PasswordResetResult,
} from './engine/password-reset.js';
import { requestVerificationMail, verifyEmail } from './engine/verify-email.js';
import { BackgroundTasks } from './lib/background-tasks.js';
import { DevOutbox } from './mail/dev-outbox.js';
import { MailQueue, type MailQueueLogger } from './mail/mail-queue.js';
import type { Mailer, MailKind } from './mail/mailer.js';
import { createSmtpMailer } from './mail/smtp-mailer.js';
import { DEFAULT_TEMPLATES, loadTemplates, type MailTemplates } from './mail/templates.js';
import pino from 'pino';
import type { UserDirectory } from './engine/user-directory.js';
import type { Page, PageRequest } from './lib/paging.js';
import { databaseLimitStore } from './limits/database-store.js';
import { RateLimiter } from './limits/limiter.js';
import { MemoryLimitStore } from './limits/memory-store.js';
import { RedisLimitStore } from './limits/redis-store.js';
import { createDpop, type Dpop } from './tokens/dpop.js';
import { PasswordHasher } from './passwords/passwords.js';
import type { ClientInfo, SessionContext, SessionPolicy } from './sessions/context.js';
import { listUserSessions } from './sessions/list-sessions.js';
import { pruneExpired, type PruneReport } from './sessions/prune.js';
import { SessionStateCache } from './sessions/session-cache.js';
import { databaseClock } from './store/database-clock.js';
import { openStore } from './store/open-store.js';
import type { EventRow, SessionRow, Store, UserRow } from './store/store.js';
import { AccessTokens } from './tokens/access-token.js';
import { DeviceTokens } from './tokens/device-token.js';
import { loadHmacKey, signingKeySeal } from './tokens/secrets.js';
import { KeyRing } from './tokens/signing-keys.js';

// The grant and the caller are the engine's (engine/grant.ts, engine/authenticate.ts); named here
// too, where the HTTP layer and embedders have always found them.
export type { Principal, TokenGrant };
export type { ChangePasswordInput, LoginInput, RefreshInput, RefreshTokenInfo, RegisterInput };
export type { CreateUserInput, IssueLoginTicketInput, RedeemLoginTicketInput, SignInInput };
export type {
  ConfirmPasswordResetInput,
  EmailChangeUndoResult,
  LinkInput,
  MailRequestInput,
  PasswordResetResult,
  RequestEmailChangeInput,
};

/** Rotor's engine: the session rules wired to one store, clock and key ring. No global state. */
export interface Rotor {
  readonly config: RotorConfig;
  readonly store: Store;
  readonly clock: Clock;
  readonly keys: KeyRing;
  readonly accessTokens: AccessTokens;
  readonly sessions: SessionContext;
  readonly accounts: AccountContext;
  /** Creates an account; sign-ups with an address count against its limit (engine/register.ts). */
  register(input: RegisterInput): Promise<UserRow>;
  /** Signs in with a password (engine/login.ts). */
  login(input: LoginInput): Promise<TokenGrant>;
  /**
   * DPoP (RFC 9449; issue 18): checks a request's proof against the shared jti store and the
   * nonces; the HTTP layer passes the proof's key (`dpopJkt`) to login and refresh.
   */
  dpop: Dpop;
  /** Exchanges a refresh token for a new grant (engine/refresh.ts). */
  refresh(input: RefreshInput): Promise<TokenGrant>;
  /** Resolves a refresh token to its session and user, without changing anything (introspection). */
  inspectRefreshToken(refreshToken: string): Promise<RefreshTokenInfo | null>;
  /** Verifies an access token and checks that its session is still active (seed 001's KeyStore check). */
  authenticate(accessToken: string): Promise<Principal>;
  /**
   * `authenticate`'s answer without a promise when the verified-token cache and the session-state
   * cache both hold it (engine/authenticate.ts); undefined when `authenticate` must decide. For the
   * check on every request: `rotor.authenticateFromCache(token) ?? (await rotor.authenticate(token))`.
   */
  authenticateFromCache(accessToken: string): Principal | undefined;
  /**
   * Changes the password of the caller's account and ends every other session of it; returns how
   * many ended. A wrong current password counts as a failed login of the account.
   */
  changePassword(input: ChangePasswordInput): Promise<number>;
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
  /**
   * The app's own sign-in (SSO, magic links, one-time codes): the app vouches that `userId` is
   * signed in on this device; the session starts, is audited and granted as by `login`
   * (engine/sign-in.ts). `not_found` for an unknown user.
   */
  signIn(input: SignInInput): Promise<TokenGrant>;
  /**
   * Creates a user without a password, for an external sign-in (engine/create-user.ts);
   * `email_taken` when the email exists, `invalid_request` for one that is not an address.
   */
  createUser(input: CreateUserInput, client?: Partial<ClientInfo>): Promise<UserRow>;
  /**
   * A single-use login ticket for `userId`, redeemable for 60 s (`LOGIN_TICKET_TTL_SECONDS`)
   * at `POST /auth/login`; only its SHA-256 is stored (engine/login-tickets.ts). `not_found` for
   * an unknown user.
   */
  issueLoginTicket(
    input: IssueLoginTicketInput,
    client?: Partial<ClientInfo>,
  ): Promise<{ ticket: string; expiresIn: number }>;
  /**
   * Redeems a login ticket, atomically and once: a login's grant. Unknown, used or expired:
   * `invalid_credentials` (counted against the address's login budget).
   */
  redeemLoginTicket(input: RedeemLoginTicketInput): Promise<TokenGrant>;
  /**
   * Deletes ended sessions, old rotated tokens, rate-limit states, events and expired login
   * tickets (see `pruneExpired`).
   */
  prune(): Promise<PruneReport>;
  // Account mails (issue 17): engine/password-reset.ts, verify-email.ts, change-email.ts.
  /**
   * Admits a password reset request (the address's shape, the limits per address asked for and
   * per client address: `rate_limited`); the look-up, the 30-minute link and the mail follow
   * after it resolves, so nothing tells whether the address has an account.
   */
  requestPasswordReset(input: MailRequestInput): Promise<void>;
  /**
   * Sets the password from a reset link and ends every session of the user, in one transaction.
   * `invalid_link` for an unknown, used, expired or replaced token.
   */
  confirmPasswordReset(input: ConfirmPasswordResetInput): Promise<PasswordResetResult>;
  /** Admits a request for the verification mail again; answered like a reset request. */
  requestVerificationMail(input: MailRequestInput): Promise<void>;
  /** Proves the address with its link's token; the user as it is now. `invalid_link`. */
  verifyEmail(input: LinkInput & Partial<ClientInfo>): Promise<UserRow>;
  /**
   * A signed-in caller's email change, with the password: a confirmation to the new address, a
   * notice with an undo link to the old (after it resolves). `invalid_credentials`.
   */
  requestEmailChange(input: RequestEmailChangeInput): Promise<void>;
  /** Makes an email change from the new address's link. `invalid_link`, `email_taken`. */
  confirmEmailChange(input: LinkInput & Partial<ClientInfo>): Promise<UserRow>;
  /** Undoes an email change from the old address's link; every session ends. */
  undoEmailChange(input: LinkInput & Partial<ClientInfo>): Promise<EmailChangeUndoResult>;
  /**
   * The development outbox (`ROTOR_SMTP_URL` unset and no `mailer` given): where mail goes, for
   * the loopback-only mailbox page; undefined when mail is really sent.
   */
  readonly outbox: DevOutbox | undefined;
  /**
   * Resolves when the work started so far after answers (account mails' look-ups and tokens) is
   * done and its mails were handed to the queue (not necessarily sent).
   */
  whenIdle(): Promise<void>;
  /** Account mails sent and given up since start, by kind, and how many wait (the metrics). */
  readonly mailCounts: MailCounts;
  /** Stops the jobs, waits up to 5 s for queued mail, closes the store if it owns it. */
  close(): Promise<void>;
  // used by http/cli (issue 16)
  /** Resolves when the database answers; rejects with the driver's error otherwise (readiness). */
  ping(): Promise<void>;
  /** Sessions neither revoked nor expired now, counted in the database (metrics; slow on millions). */
  countActiveSessions(): Promise<number>;
  /** The account with this email (normalized first), or undefined (the CLI's user commands). */
  findUserByEmail(email: string): Promise<UserRow | undefined>;
}

/** The account mails' counters of one Rotor (`GET /metrics`: `rotor_mails_total`, `rotor_mails_pending`). */
export interface MailCounts {
  readonly sent: Readonly<Partial<Record<MailKind, number>>>;
  readonly failed: Readonly<Partial<Record<MailKind, number>>>;
  readonly pending: number;
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
  /**
   * The app's own user table (issue 16): logins find users and hashes there, new hashes are
   * written back, and `register` is refused (`forbidden`: the app owns sign-up).
   */
  users?: UserDirectory;
  /**
   * The app's claims for every access token signed (login, sign-in, ticket, every refresh).
   * Rotor's own claims cannot be set (TypeError naming it); at most 4 KiB of JSON (RangeError).
   */
  claims?: ClaimsHook;
  /**
   * The app's own mail sender for the account mails (issue 17), instead of SMTP
   * (`ROTOR_SMTP_URL`) or the development outbox.
   */
  mailer?: Mailer;
  /** Templates replacing the defaults per kind (beside `ROTOR_MAIL_TEMPLATES`' files). */
  mailTemplates?: Partial<MailTemplates>;
  /**
   * Where the engine logs what no request answers for (mail that could not be sent, work after
   * an answer that failed); default a pino logger at `ROTOR_LOG_LEVEL` on stdout. The server
   * passes its own.
   */
  log?: MailQueueLogger;
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
      ...(config.databaseSchema !== undefined && { schema: config.databaseSchema }),
      ...(config.tablePrefix !== undefined && { tablePrefix: config.tablePrefix }),
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
      users: options.users,
      claims: options.claims,
      mailer: options.mailer,
      mailTemplates: options.mailTemplates,
      logger: options.log,
    });
  } catch (error) {
    stopClock();
    if (ownsStore) await store.close();
    throw error;
  }
}

/**
 * Wires the engine: builds the one {@link EngineContext} of this Rotor and answers each method
 * with its operation (`engine/*.ts`). No operation's sequence lives here.
 */
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
    users,
    claims,
    mailer,
    mailTemplates,
    logger = pino({ level: config.logLevel }),
  }: {
    ownsStore: boolean;
    injectedClock: boolean;
    stopClock: () => void;
    users: UserDirectory | undefined;
    claims: ClaimsHook | undefined;
    mailer: Mailer | undefined;
    mailTemplates: Partial<MailTemplates> | undefined;
    logger: MailQueueLogger | undefined;
  },
): Rotor {
  const sessionPolicy: SessionPolicy = {
    refreshTtl: config.refreshTtl,
    sessionMaxAge: config.sessionMaxAge,
    refreshGrace: config.refreshGrace,
    maxSessions: config.maxSessions,
  };
  const sessions: SessionContext = {
    store,
    clock,
    hmacKey,
    // An injected clock is every clock, the database's included: tests and simulations run on
    // one time. Otherwise the database's clock where it has one (PostgreSQL), for every instance.
    decisionTime: injectedClock
      ? async () => clock.now()
      : async (tx) => (await tx.databaseNow()) ?? clock.now(),
    statementTime: injectedClock ? () => clock.now() : () => undefined,
    issued: new IssuedRefreshTokens(),
    policy: sessionPolicy,
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
  const redisLimits =
    config.rateLimit && config.redisUrl ? new RedisLimitStore(config.redisUrl) : undefined;
  // The account mails (issue 17): the app's sender, SMTP, or the development outbox.
  const outbox =
    mailer || config.mail.smtpUrl
      ? undefined
      : new DevOutbox({
          clock,
          log: (line, fields) => logger.info?.(fields, line),
        });
  const sender: Mailer =
    mailer ??
    outbox ??
    createSmtpMailer({ url: config.mail.smtpUrl as string, from: config.mail.from });
  const sent: Partial<Record<MailKind, number>> = {};
  const failed: Partial<Record<MailKind, number>> = {};
  const mailQueue = new MailQueue({
    mailer: sender,
    logger,
    onSent: (message) => void (sent[message.kind] = (sent[message.kind] ?? 0) + 1),
    onFailed: (message) => void (failed[message.kind] = (failed[message.kind] ?? 0) + 1),
  });
  const templates: MailTemplates = {
    ...(config.mail.templatesDir ? loadTemplates(config.mail.templatesDir) : DEFAULT_TEMPLATES),
    ...mailTemplates,
  };
  const tasks = new BackgroundTasks((error, name) =>
    logger.error(
      { err: error, task: name },
      `rotor: ${name} failed after its request was answered`,
    ),
  );

  const ctx: EngineContext = {
    store,
    clock,
    policy: {
      ...sessionPolicy,
      accessTtlSeconds: config.accessTtl,
      requireVerifiedEmail: config.mail.requireVerifiedEmail,
      requireDpop: config.dpop.mode === 'required',
    },
    limits: {
      shared: new RateLimiter(redisLimits ?? databaseLimitStore(store), clock, config.rateLimit),
      local: new RateLimiter(new MemoryLimitStore(), clock, config.rateLimit),
      rules: config.rateLimits,
    },
    audit: new AuditLog(store, clock),
    accessTokens,
    deviceTokens: new DeviceTokens(hmacKey),
    sessions,
    accounts,
    // The session-state check of every authenticated request, cached while the store vouches for
    // it; its watch is the one every request consults, so it also hears of key changes.
    sessionStates: new SessionStateCache(store, { onKeys: () => keys.markStale() }),
    users,
    claims,
    mail: createAccountMail({
      templates,
      queue: mailQueue,
      appUrl: config.mail.appUrl,
      appName: senderName(config.mail.from),
    }),
    tasks,
  };

  return {
    config,
    store,
    clock,
    keys,
    accessTokens,
    sessions,
    accounts,
    register: (input) => register(ctx, input),
    login: (input) => login(ctx, input),
    refresh: (input) => refresh(ctx, input),
    dpop: createDpop({ config: config.dpop, clock, store, secret: hmacKey, redis: redisLimits }),
    inspectRefreshToken: (refreshToken) => inspectRefreshToken(ctx, refreshToken),
    authenticate: (accessToken) => authenticate(ctx, accessToken),
    authenticateFromCache: (accessToken) => authenticateFromCache(ctx, accessToken),
    changePassword: (input) => changePassword(ctx, input),
    logoutWithRefreshToken: (refreshToken, client, clientId) =>
      logoutWithRefreshToken(ctx, refreshToken, client, clientId),
    logoutSession: (sessionId, client) => logoutSession(ctx, sessionId, client),
    logoutAll: (userId, client, reason) => logoutAll(ctx, userId, client, reason),
    revokeSession: (userId, sessionId, client) => revokeSession(ctx, userId, sessionId, client),
    listSessions: (userId, page) => listUserSessions(sessions, userId, page),
    listEvents: (userId, page) => ctx.audit.list(userId, page),
    signIn: (input) => signIn(ctx, input),
    createUser: (input, client) => createUser(ctx, input, client),
    issueLoginTicket: (input, client) => issueLoginTicket(ctx, input, client),
    redeemLoginTicket: (input) => redeemLoginTicket(ctx, input),
    prune: () => pruneExpired(store, clock, config.retention, config.auditRetention),
    requestPasswordReset: (input) => requestPasswordReset(ctx, input),
    confirmPasswordReset: (input) => confirmPasswordReset(ctx, input),
    requestVerificationMail: (input) => requestVerificationMail(ctx, input),
    verifyEmail: (input) => verifyEmail(ctx, input),
    requestEmailChange: (input) => requestEmailChange(ctx, input),
    confirmEmailChange: (input) => confirmEmailChange(ctx, input),
    undoEmailChange: (input) => undoEmailChange(ctx, input),
    outbox,
    whenIdle: () => tasks.idle(),
    mailCounts: {
      sent,
      failed,
      get pending() {
        return mailQueue.pending;
      },
    },
    async close() {
      // Work after answers first (it writes to the store), then the mail it queued.
      await tasks.idle();
      await mailQueue.close({ timeoutMs: 5_000 });
      if (!mailer) await sender.close?.();
      stopClock();
      await ctx.sessionStates.close();
      await redisLimits?.close();
      if (ownsStore) await store.close();
    },
    // used by http/cli (issue 16)
    ping: () => store.ping(),
    countActiveSessions: () => store.countActiveSessions(clock.now()),
    findUserByEmail: (email) => store.findUserByEmail(normalizeEmail(email)),
  };
}
