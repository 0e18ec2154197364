import type { AccountContext } from '../accounts/accounts.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { RateLimitBudgets } from '../config/load-config.js';
import type { RateLimiter } from '../limits/limiter.js';
import type { SessionContext, SessionPolicy } from '../sessions/context.js';
import type { SessionStateCache } from '../sessions/session-cache.js';
import type { Store } from '../store/store.js';
import type { AccessTokens } from '../tokens/access-token.js';
import type { DeviceTokens } from '../tokens/device-token.js';
import type { BackgroundTasks } from '../lib/background-tasks.js';
import type { AccountMail } from './account-mail.js';
import type { ClaimsHook } from './custom-claims.js';
import type { UserDirectory } from './user-directory.js';

/** The lifetimes the operations apply, in seconds: the session's and the access token's. */
export interface EnginePolicy extends SessionPolicy {
  /** `ROTOR_ACCESS_TTL`: the longest an access token lives (never past its session). */
  accessTtlSeconds: number;
  /** `ROTOR_REQUIRE_VERIFIED_EMAIL`: a password login with an unproven address is refused. */
  requireVerifiedEmail: boolean;
  /** `ROTOR_DPOP=required`: a session not bound to a key no longer refreshes (issue 18). */
  requireDpop: boolean;
}

/**
 * The rate limiters and their budgets. `shared` is seen by every instance (the database, or Redis
 * with `ROTOR_REDIS_URL`): logins, sign-ups, password changes. `local` stays in this process (no
 * write per refresh): the refresh limits, which guard against runaway clients.
 */
export interface EngineLimits {
  shared: RateLimiter;
  local: RateLimiter;
  rules: RateLimitBudgets;
}

/**
 * What every engine operation (`engine/*.ts`) runs on: one store, one clock, the policy, the
 * limits and the audit log, built once by `createRotor` and never global, so tests build their own.
 * Operations are plain functions `operation(ctx, input)`; the `Rotor` facade only wires them.
 */
export interface EngineContext {
  store: Store;
  clock: Clock;
  policy: EnginePolicy;
  limits: EngineLimits;
  /** The security events; an event of a change is written in the change's transaction. */
  audit: AuditLog;
  /** Signs and verifies access tokens (the key ring's current key). */
  accessTokens: AccessTokens;
  /** Device cookies of earlier sign-ins (OWASP; tokens/device-token.ts). */
  deviceTokens: DeviceTokens;
  /** What the session rules (`sessions/*`) run on: the store, clock, policy and HMAC key. */
  sessions: SessionContext;
  /** What the account rules (`accounts/*`) run on: the store, clock and password hasher. */
  accounts: AccountContext;
  /** The session-state check of every authenticated request, cached while the store vouches. */
  sessionStates: SessionStateCache;
  /** The app's own user table (issue 16); unset, users live in Rotor's `users` table. */
  users?: UserDirectory | undefined;
  /** The app's claims for every access token signed (issue 16). */
  claims?: ClaimsHook | undefined;
  /** The account mails (issue 17): rendered, queued, sent without blocking a request. */
  mail: AccountMail;
  /** Work a request starts but does not wait for (the account mails' look-ups and tokens). */
  tasks: BackgroundTasks;
}
