/**
 * `@rotor/client`: the Rotor SDK for browsers and Node 20+. No runtime dependencies.
 * @example
 * import { createRotorClient } from '@rotor/client';
 * const rotor = createRotorClient({ baseUrl: '' });
 * if (!(await rotor.restore())) await rotor.login({ email, password });
 */
export { createRotorClient, type RequestAuth, type RotorClient } from './client.js';
export { RotorClientError } from './errors.js';
export { memoryStorage } from './storage.js';
export type {
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
  TokenStorage,
} from './types.js';
