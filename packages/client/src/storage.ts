import type { TokenStorage } from './types.js';

/** Keeps the refresh token in memory only: gone when the process ends. */
export function memoryStorage(): TokenStorage {
  let token: string | null = null;
  return {
    get: () => token,
    set: (value) => {
      token = value;
    },
    delete: () => {
      token = null;
    },
  };
}
