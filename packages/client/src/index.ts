/**
 * `@rotor/client`: the Rotor SDK for browsers and Node 20+. No runtime dependencies.
 * @example
 * import { createRotorClient } from '@rotor/client';
 * const rotor = createRotorClient({ baseUrl: '' });
 * if (!(await rotor.restore())) await rotor.login({ email, password });
 */
export { createRotorClient, type RequestAuth, type RotorClient } from './client.js';
export {
  ROTOR_ERROR_CODES,
  RotorClientError,
  shouldRetry,
  type RetryableCode,
  type RotorClientErrorCode,
  type RotorErrorCode,
} from './errors.js';
export { memoryStorage } from './storage.js';
export { takeAccountLink } from './account-link.js';
export { SESSION_END_REASONS } from './types.js';
export type {
  AccountLink,
  AccountRecovery,
  AuthState,
  Delivery,
  DpopKeyStore,
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
  TokenStorage,
  TokenType,
} from './types.js';
