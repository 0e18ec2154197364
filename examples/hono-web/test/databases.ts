import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test PostgreSQL server (packages/server/test/global-setup.ts). */
    postgresUrl: string;
  }
}

const POSTGRES_URL = inject('postgresUrl');

/** The databases the example runs on; PostgreSQL when the test setup started one (CI always). */
export const DIALECTS = [
  { name: 'sqlite', available: true },
  { name: 'postgres', available: POSTGRES_URL !== '' },
] as const;

/** A new, empty database: an SQLite file in a new folder, or a new database on the test server. */
export async function newDatabase(
  dialect: 'sqlite' | 'postgres',
): Promise<{ url: string; drop: () => void }> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'rotor-example-'));
    return {
      url: `sqlite:${join(dir, 'rotor.db')}`,
      drop: () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `rotor_example_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => {} };
}
