import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TokenStorage } from './types.js';

/**
 * Keeps the refresh token of a CLI or server client in a file readable by its owner only (0600).
 * @example createRotorClient({ baseUrl, delivery: 'body', storage: fileStorage('~/.config/app/token') })
 */
export function fileStorage(path: string): TokenStorage {
  return {
    async get() {
      try {
        return (await readFile(path, 'utf8')).trim() || null;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },
    async set(token) {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await writeFile(path, token, { mode: 0o600 });
    },
    async delete() {
      await rm(path, { force: true });
    },
  };
}
