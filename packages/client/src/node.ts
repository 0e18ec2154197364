import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateDpopKey } from './dpop.js';
import type { DpopKeyStore, TokenStorage } from './types.js';

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

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/**
 * Keeps the DPoP key pair of a CLI or server client (`dpop`) in a file readable by its owner only:
 * the private JWK, written with mode 0600 (its folder 0700) when the file is missing. The same file
 * on the next start keeps the session bound to the same key. A file that others can read is
 * refused, as ssh refuses such a key. Once read, the private key is non-extractable in memory.
 * @example createRotorClient({ baseUrl, delivery: 'body', dpop: fileDpopKey('~/.config/app/dpop.jwk') })
 */
export function fileDpopKey(path: string): DpopKeyStore {
  async function read(): Promise<JsonWebKey | null> {
    try {
      const text = await readFile(path, 'utf8');
      if (process.platform !== 'win32' && ((await stat(path)).mode & 0o077) !== 0) {
        throw new Error(`The DPoP key file ${path} is readable by others: chmod 600 it.`);
      }
      return JSON.parse(text) as JsonWebKey;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }
  async function create(): Promise<JsonWebKey> {
    const jwk = await crypto.subtle.exportKey('jwk', (await generateDpopKey(true)).privateKey);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    try {
      // `wx`: never over a key another process has just written; that one wins.
      await writeFile(path, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
      return jwk;
    } catch (error) {
      const kept = (error as NodeJS.ErrnoException).code === 'EEXIST' && (await read());
      if (kept) return kept;
      throw error;
    }
  }
  return {
    async load() {
      const { kty, crv, x, y, d } = (await read()) ?? (await create());
      if (kty !== 'EC' || crv !== 'P-256' || !d) {
        throw new Error(`The DPoP key file ${path} holds no private P-256 key.`);
      }
      const subtle = crypto.subtle;
      return {
        privateKey: await subtle.importKey('jwk', { kty, crv, x, y, d }, P256, false, ['sign']),
        publicKey: await subtle.importKey('jwk', { kty, crv, x, y }, P256, true, ['verify']),
      };
    },
  };
}
