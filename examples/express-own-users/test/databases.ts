// A fresh, empty database per test: an SQLite file, or a new database on the test PostgreSQL that
// vitest's global setup starts (packages/server/test/global-setup.ts; '' when there is none).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';

const POSTGRES_URL = inject('postgresUrl');
const dir = mkdtempSync(join(tmpdir(), 'rotor-example-'));

export type Dialect = 'sqlite' | 'postgres';
export const DIALECTS: { name: Dialect; available: boolean }[] = [
  { name: 'sqlite', available: true },
  { name: 'postgres', available: POSTGRES_URL !== '' },
];

export async function freshDatabaseUrl(dialect: Dialect): Promise<string> {
  const name = `example_${randomBytes(6).toString('hex')}`;
  if (dialect === 'sqlite') return `sqlite:${join(dir, `${name}.db`)}`;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export function removeSqliteFiles(): void {
  rmSync(dir, { recursive: true, force: true });
}
