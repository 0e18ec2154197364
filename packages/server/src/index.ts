/**
 * `@rotor/server`: the Rotor auth service. `createServer(loadConfig())` is all most users need;
 * the engine, store and rules are exported for embedding and tests.
 */
export {
  loadConfig,
  type RotorConfig,
  type Delivery,
  type TrustProxy,
  type TrustedProxy,
} from './config/load-config.js';
export { parseDuration } from './config/duration.js';
export { RotorError, ConfigError, ERROR_STATUS, type RotorErrorCode } from './errors.js';
export { systemClock, ManualClock, type Clock } from './clock.js';
export { createServer, type CreateServerOptions } from './http/create-server.js';
// The types of `@rotor/server/fastify` (and with them `app.rotor`, `app.requireSession`).
export type { RotorPluginOptions, RotorSource, RotorRouteOptions } from './http/plugin.js';
export { clientAddressResolver, type AddressedRequest } from './http/client-address.js';
export {
  createRotor,
  type Rotor,
  type TokenGrant,
  type Principal,
  type CreateRotorOptions,
} from './rotor.js';
export { openStore, migrate } from './store/open-store.js';
export { KyselyStore } from './store/kysely-store.js';
export type {
  Store,
  UserRow,
  SessionRow,
  SessionWithUser,
  TokenRow,
  RevokeReason,
  KeysetPage,
  RowSlice,
  SessionKey,
} from './store/store.js';
export { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, type Page, type PageRequest } from './lib/paging.js';
export { assertPlainText, type PlainTextOptions } from './lib/plain-text.js';
export type { SessionStateListener, ChangeWatch, ExternalChanges } from './store/changes.js';
export { LISTENER_STALE_AFTER_MS } from './store/postgres/postgres-changes.js';
export type { Database } from './store/schema.js';
export type { SessionContext, SessionPolicy } from './sessions/context.js';
export { startSession, type IssuedSession } from './sessions/start-session.js';
export { rotateRefreshToken } from './sessions/rotate-refresh-token.js';
export {
  endSession,
  endSessionByRefreshToken,
  revokeUserSession,
  revokeAllUserSessions,
} from './sessions/end-sessions.js';
export {
  assertSessionActive,
  sessionEndsAt,
  type SessionEndReason,
} from './sessions/session-state.js';
export { hashRefreshToken, deriveSuccessor, generateRefreshToken } from './tokens/refresh-token.js';
export { ACCESS_TOKEN_TYPE, type AccessTokenClaims } from './tokens/access-token.js';
export { normalizeEmail } from './accounts/email.js';
export { VERSION } from './version.js';
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
export {
  reserveEvent,
  releaseEvent,
  emptyLimitState,
  type LimitState,
  type Reservation,
} from './limits/window.js';
export { addressSubject } from './limits/address-subject.js';
