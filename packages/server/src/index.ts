/**
 * `@rotor/server`: the Rotor auth service. `createServer(loadConfig())` is all most users need;
 * the engine (`createRotor`), the store and the rate limiters are exported for embedding and
 * tests. The session rules themselves stay internal: a caller reaches them through `Rotor`.
 */

// The server and its configuration: `createServer(loadConfig())`.
export {
  loadConfig,
  type RotorConfig,
  type Delivery,
  type TrustProxy,
  type TrustedProxy,
} from './config/load-config.js';
export { parseDuration } from './config/duration.js';
export { createServer, type CreateServerOptions } from './http/create-server.js';
// The types of `@rotor/server/fastify` (and with them `app.rotor`, `app.requireSession`).
export type { RotorPluginOptions, RotorSource, RotorRouteOptions } from './http/plugin.js';
export { clientAddressResolver, type AddressedRequest } from './http/client-address.js';
export { VERSION } from './version.js';

// Errors: one class per package, its codes and their HTTP statuses (docs/errors.md).
export {
  RotorError,
  ConfigError,
  ERRORS,
  ERROR_STATUS,
  type ErrorSpec,
  type RotorErrorCode,
} from './errors.js';
export { OAUTH_ERRORS, type OAuthErrorCode, type OAuthErrorSpec } from './http/oauth-errors.js';

// Time: every rule reads an injected clock; tests freeze or advance a `ManualClock`.
export { systemClock, ManualClock, type Clock } from './clock.js';

// The engine, for embedding: its operations and what they take and give.
export {
  createRotor,
  type Rotor,
  type CreateRotorOptions,
  type TokenGrant,
  type Principal,
  type LoginInput,
  type RefreshInput,
  type RegisterInput,
  type ChangePasswordInput,
  type RefreshTokenInfo,
} from './rotor.js';
export type { SessionContext, SessionPolicy, ClientInfo } from './sessions/context.js';
export type { SessionEndReason } from './sessions/session-state.js';
export type { PruneReport } from './sessions/prune.js';
export type { AccessTokenClaims } from './tokens/access-token.js';
export type { Page, PageRequest } from './lib/paging.js';
/** Opens a session directly, without a password: for tests that race it against other writes. */
export type { UserDirectory, DirectoryUser } from './engine/user-directory.js';
export {
  RESERVED_CLAIMS,
  MAX_CUSTOM_CLAIMS_BYTES,
  type ClaimsHook,
} from './engine/custom-claims.js';
export { LOGIN_TICKET_TTL_SECONDS, hashLoginTicket } from './engine/login-tickets.js';
export { startSession, type IssuedSession } from './sessions/start-session.js';

// The store: opening one by URL, or a `KyselyStore` over your own Kysely; the `Store` interface
// and its rows, for another implementation.
export { openStore, migrate } from './store/open-store.js';
export { KyselyStore } from './store/kysely-store.js';
export type { StoreOptions, OpenStoreOptions } from './store/open-store.js';
export {
  createStore,
  type CreateStoreOptions,
  type StoreConnection,
} from './store/create-store.js';
export { RotorNames, type TableNaming } from './store/naming.js';
export type { UserStore } from './store/users.js';
export type { SessionStore } from './store/sessions.js';
export type { TokenStore } from './store/tokens.js';
export type { EventStore } from './store/events.js';
export type { KeyStore } from './store/keys.js';
export type { Database } from './store/schema.js';
export type {
  Store,
  UserRow,
  SessionRow,
  SessionWithUser,
  TokenRow,
  EventRow,
  RevokeReason,
  KeysetPage,
  RowSlice,
  SessionKey,
  LoginTicketRow,
} from './store/store.js';
export type { SessionStateListener, ChangeWatch, ExternalChanges } from './store/changes.js';
export { LISTENER_STALE_AFTER_MS } from './store/postgres/postgres-changes.js';

// Rate limits: the rules, the limiter and its stores (memory, database, Redis), and the sliding
// window a `LimitStore` keeps.
export { LIMITS, type LimitRule } from './limits/rules.js';
export {
  RateLimiter,
  RateLimitedError,
  type LimitStore,
  type LimitReservation,
} from './limits/limiter.js';
export { MemoryLimitStore } from './limits/memory-store.js';
export { RedisLimitStore } from './limits/redis-store.js';
export { databaseLimitStore } from './limits/database-store.js';
export { SqlLimitStore } from './limits/sql-store.js';
export {
  reserveEvent,
  releaseEvent,
  emptyLimitState,
  type LimitState,
  type Reservation,
} from './limits/window.js';
export { addressSubject } from './limits/address-subject.js';

// Mail (issue 17): the `Mailer` an app may supply, the SMTP one, the templates, the queue that
// sends without blocking a request, and the development outbox with its loopback-only mailbox.
export type { Mailer, MailMessage, MailKind, MailVariables } from './mail/mailer.js';
export {
  DEFAULT_TEMPLATES,
  MAIL_KINDS,
  loadTemplates,
  renderMail,
  type MailTemplates,
  type MailTemplate,
  type RenderedMail,
} from './mail/templates.js';
export { createSmtpMailer, SmtpSendError, type SmtpMailerOptions } from './mail/smtp-mailer.js';
export {
  MailQueue,
  DEFAULT_RETRY_DELAYS_MS,
  type MailQueueOptions,
  type MailQueueLogger,
} from './mail/mail-queue.js';
export {
  DevOutbox,
  type DevOutboxOptions,
  type OutboxMessage,
  type OutboxLog,
} from './mail/dev-outbox.js';
export { mailboxRoutes, isLoopbackRequest } from './http/mailbox-routes.js';
